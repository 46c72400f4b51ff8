"""``digisem baseline`` and ``digisem eval --reference``: the classical reference from the command line."""

import json
import math

import pytest

from digisem.cli import main


def test_baseline_writes_the_results_schema_and_the_plot(tmp_path, capsys):
    out = tmp_path / "baseline"
    assert main(["baseline", "webp", "--ratio", "1/6", "--snr", "0,20", "--data", "samples", "--limit", "4", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert (out / "psnr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curves, meta = results["results"], results["meta"]
    assert curves["snr_db"] == [0.0, 20.0] and meta["channel_uses"] == 512 and meta["snr_kind"] == "esn0" and meta["n_images"] == 4
    for key in ("psnr", "ssim", "ms_ssim", "failure_rate", "mcs", "psnr_capacity_bound", "capacity_bits"):
        assert len(curves[key]) == 2, key
    assert curves["capacity_bits"] == [512, 8 * int(512 * math.log2(101) // 8)]
    assert len(curves["by_mcs"]) + len(curves["unfit_mcs"]) == 15
    assert curves["psnr"][1] > curves["psnr"][0] and curves["failure_rate"][1] == 0.0
    assert "git" in meta and meta["wall_s"] >= 0
    assert "best MCS" in capsys.readouterr().out


@pytest.mark.parametrize("arguments,message", [
    (["png", "--channel-uses", "512"], "unknown codec 'png'"),
    (["webp", "--channel-uses", "16"], "too few for any webp stream: the smallest needs"),
    (["webp", "--ratio", "7"], "--ratio must be in"),
])
def test_baseline_bad_input_is_one_clear_line(tmp_path, capsys, arguments, message):
    assert main(["baseline", *arguments, "--snr", "10", "--data", "samples", "--limit", "2", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_baseline_bpg_without_its_programs_says_how_to_get_them(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert main(["baseline", "bpg", "--channel-uses", "512", "--snr", "10", "--data", "samples", "--out", str(tmp_path / "x")]) == 2
    assert "bpgenc and bpgdec" in capsys.readouterr().err


def test_eval_reference_is_drawn_at_the_systems_channel_uses_and_eb_n0_axis(tmp_path):
    out = tmp_path / "eval"
    assert main(["eval", "ampsc-cifar10-4bit", "--data", "samples", "--limit", "2", "--snr", "0,12", "--reference", "webp", "--out", str(out), "--quiet"]) == 0
    reference = json.loads((out / "reference-webp.json").read_text())
    assert reference["meta"]["channel_uses"] == 512, "AMP-SC 4-bit: 2,048 bits per image over 16-QAM"
    assert reference["meta"]["snr_kind"] == "ebn0" and reference["meta"]["esn0_offset_db"] == pytest.approx(10 * math.log10(4), abs=1e-3)
    assert reference["results"]["snr_db"] == [0.0, 12.0]
    assert reference["results"]["capacity_bits"][0] == 8 * int(512 * math.log2(1 + 10 ** (10 * math.log10(4) / 10)) // 8), "capacity at Es/N0 = Eb/N0 + 6.02 dB"
    assert (out / "psnr-vs-webp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
