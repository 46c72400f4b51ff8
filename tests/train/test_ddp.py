import json
import os
import shutil
import subprocess

import pytest


@pytest.mark.slow
def test_recipe_runs_unchanged_under_torchrun_ddp(tmp_path):
    torchrun = shutil.which("torchrun") or pytest.skip("torchrun is not on PATH")
    command = [torchrun, "--standalone", "--nproc_per_node=2", "-m", "digisem.cli", "train", "ampsc-smoke",
               "model.width=4", "model.irsnet_width=2", "eval.snr=0", "--runs", str(tmp_path), "--quiet"]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "ampsc-smoke" / "results.json").read_text())
    assert results["results"]["snr_db"] == [0.0]
    # each of the 2 ranks saw half of the 8 images per epoch: 1 batch of 4
    step1 = next(p for p in (tmp_path / "_stages").iterdir() if p.name.endswith("-step1-0"))
    assert len((step1 / "log.jsonl").read_text().splitlines()) == 2
