import json

import numpy as np
import pytest

from digisem.cli import main, parse_snr_range
from digisem.link import bsc_flip_probability


def test_parse_snr_range():
    assert parse_snr_range("0:14:1") == [float(v) for v in range(15)]
    assert parse_snr_range("-18:18:6") == [-18.0, -12.0, -6.0, 0.0, 6.0, 12.0, 18.0]
    assert parse_snr_range("0,3,6") == [0.0, 3.0, 6.0]
    assert parse_snr_range("0:1:0.25") == [0.0, 0.25, 0.5, 0.75, 1.0]
    for bad in ("5:1:1", "0:10:0", "a,b", "1:2"):
        with pytest.raises(ValueError):
            parse_snr_range(bad)


def test_ber_verb_writes_results_plot_and_matches_table_iv(tmp_path, capsys):
    out = tmp_path / "ber"
    assert main(["ber", "--modulation", "16qam", "--snr", "0:8:4", "--bits", "400000", "--target-errors", "2000", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert (out / "ber.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curves = results["results"]
    assert curves["snr_db"] == [0.0, 4.0, 8.0]
    np.testing.assert_allclose(curves["esn0_db"], [6.0206, 10.0206, 14.0206], atol=1e-3)
    np.testing.assert_allclose(curves["ber"], bsc_flip_probability("16qam", [0, 4, 8]), rtol=0.08)
    assert results["meta"]["snr_kind"] == "ebn0" and results["meta"]["seed"] == 0
    assert "BER" in capsys.readouterr().out
    # the same seed gives the same numbers
    assert main(["ber", "--modulation", "16qam", "--snr", "0:8:4", "--bits", "400000", "--target-errors", "2000", "--out", str(tmp_path / "again"), "--quiet"]) == 0
    assert json.loads((tmp_path / "again" / "results.json").read_text())["results"]["ber"] == curves["ber"]


def test_plot_verb_overlays_results(tmp_path):
    out = tmp_path / "a"
    main(["ber", "--modulation", "qpsk", "--snr", "0,4", "--bits", "20000", "--out", str(out), "--quiet"])
    assert main(["plot", str(out / "results.json"), str(out / "results.json"), "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").exists()


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    assert main(["ber", "--modulation", "17qam", "--out", str(tmp_path / "x")]) == 2
    assert "unknown modulation '17qam'" in capsys.readouterr().err
    assert main(["ber", "--channel", "wifi", "--out", str(tmp_path / "x")]) == 2
    assert "unknown channel 'wifi'" in capsys.readouterr().err
    assert main(["ber", "--snr", "9:1:1", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["plot", str(bad)]) == 2
    assert "cannot read results file" in capsys.readouterr().err


def test_help_lists_verbs(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for verb in ("ber", "download", "plot"):
        assert verb in text
    for verb in ("ber", "download", "plot"):
        with pytest.raises(SystemExit):
            main([verb, "--help"])


def test_download_offline_gives_one_line_error(tmp_path, monkeypatch, capsys):
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["download", "cifar10", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cifar-10-python.tar.gz" in err and "Traceback" not in err


def test_negative_snr_values_need_no_equals_sign():
    from digisem.cli import join_negative_snr_values

    assert join_negative_snr_values(["eval", "m", "--snr", "-18:18:6", "--grid-snr", "-6,0", "--limit", "5"]) == ["eval", "m", "--snr=-18:18:6", "--grid-snr=-6,0", "--limit", "5"]
    assert join_negative_snr_values(["eval", "m", "--snr", "0:18:1", "--quiet"]) == ["eval", "m", "--snr", "0:18:1", "--quiet"]
    assert join_negative_snr_values(["eval", "m", "--snr", "--quiet"]) == ["eval", "m", "--snr", "--quiet"]
