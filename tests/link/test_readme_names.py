"""Every name the README's link table lists is importable from ``digisem.link``, as the table says."""

import re
from pathlib import Path

import digisem.link

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_name_in_the_readme_link_table_is_exported_by_digisem_link():
    lines = README.read_text().splitlines()
    start = lines.index("| piece | what |")
    table = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        table.append(line.replace("\\|", "").split("|")[1])
    names = {match for cell in table for match in re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)", cell)}
    assert {"LDPC5GCode", "ber_rayleigh", "BitLink", "make_channel"} <= names
    missing = sorted(name for name in names if not hasattr(digisem.link, name))
    assert not missing, f"README names not exported by digisem.link: {missing}"
