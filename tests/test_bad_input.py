"""Issue 13: every bad input gets a clear one-line error (exit status 2 on the command line, a
named exception in the library) and leaves no file behind; what was half-done is cleaned up."""

import hashlib
import json
import math
import os
import pickle
import shutil
import time

import pytest
import torch
from torch import nn

from digisem import cli, zoo
from digisem.cli import main
from digisem.io import atomic_write, remove_stale_temporaries, staged_folder, write_json
from digisem.link.errors import InputError
from digisem.weights import CheckpointError, load_state, read_weights, save_weights


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder with a plain file ``afile``, an image ``cat.png``, a non-image ``fake.png`` and two
    results files (BER over Eb/N0, PSNR over Es/N0); the working directory, so default outputs land here."""
    from digisem.data import sample_images
    from digisem.imageio import write_image

    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a folder")
    write_image(sample_images("cifar")[0][0], tmp_path / "cat.png")
    (tmp_path / "fake.png").write_text("not an image")
    write_json(tmp_path / "ber.json", {"name": "ber", "results": {"snr_db": [0.0, 4.0], "ber": [0.1, 0.01]}, "meta": {"snr_kind": "ebn0"}})
    write_json(tmp_path / "psnr.json", {"name": "psnr", "results": {"snr_db": [0.0, 4.0], "psnr": [20.0, 25.0]}, "meta": {"snr_kind": "esn0"}})
    (tmp_path / "broken.json").write_text("{not json")
    return tmp_path


def _files(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


SAMPLES = ["--data", "samples", "--quiet"]

CLI_CASES = [
    # ber
    ("ber-snr-too-many", ["ber", "--snr", "0:1e9:1"], "has 1000000001 points; at most 1000"),
    ("ber-snr-nan", ["ber", "--snr", "nan"], "values must be finite"),
    ("ber-snr-backwards", ["ber", "--snr", "9:1:1"], "STOP >= START"),
    ("ber-snr-as-typed", ["ber", "--snr", "100"], "--snr 100 dB Eb/N0 (106.02 dB Es/N0 on this link) is outside the link's range [-50, 100]"),
    ("ber-snr-esn0-low", ["ber", "--snr-kind", "esn0", "--snr", "-60"], "--snr -60 dB Es/N0 is outside the link's range"),
    ("ber-out-is-a-file", ["ber", "--out", "afile"], "--out afile is a file, not a folder"),
    ("ber-out-under-a-file", ["ber", "--out", "afile/sub"], "afile is a file, so afile/sub cannot be created"),
    ("ber-bits-zero", ["ber", "--bits", "0"], "--bits and --target-errors must be >= 1"),
    ("ber-target-errors-zero", ["ber", "--target-errors", "0"], "--bits and --target-errors must be >= 1"),
    ("ber-modulation", ["ber", "--modulation", "17qam"], "unknown modulation '17qam'"),
    ("ber-channel", ["ber", "--channel", "wifi"], "unknown channel 'wifi'"),
    ("ber-zf-8x4", ["ber", "--channel", "mimo-8x4-zf"], "ZF detection needs num_tx <= num_rx"),
    ("ber-ldpc-rate", ["ber", "--code", "ldpc-3/1"], "invalid 5G NR LDPC code"),
    # eval
    ("eval-limit-zero", ["eval", "ampsc-cifar10-4bit", "--limit", "0", *SAMPLES], "--limit must be >= 1, got 0"),
    ("eval-limit-negative", ["eval", "ampsc-cifar10-4bit", "--limit", "-1", *SAMPLES], "--limit must be >= 1, got -1"),
    ("eval-out-is-a-file", ["eval", "ampsc-cifar10-4bit", "--snr", "0", "--out", "afile", *SAMPLES], "--out afile is a file, not a folder"),
    ("eval-snr-out-of-range", ["eval", "jcm-cifar10-64qam", "--snr", "200", *SAMPLES], "--snr 200 dB Es/N0 is outside the link's range"),
    ("eval-bsc-snr-out-of-range", ["eval", "ampsc-cifar10-4bit", "--snr=-1000", *SAMPLES], "--snr -1000 dB Eb/N0 is outside the link's range"),
    ("eval-grid-snr", ["eval", "jcm-cifar10-64qam", "--snr", "0", "--grid-snr", "500", *SAMPLES], "--snr 500 dB Es/N0 is outside"),
    ("eval-classifier-denoiser", ["eval", "vqvae-fim-at-cifar10", "--denoiser", "scdm", *SAMPLES], "this model is a classifier: to measure its robustness, use digisem attack"),
    ("eval-unknown-model", ["eval", "no-such-model", *SAMPLES], "no model 'no-such-model': not a zoo name"),
    ("eval-restorer", ["eval", "scdm-cifar10-64qam", *SAMPLES], "not a system"),
    ("eval-bad-channel", ["eval", "ampsc-cifar10-4bit", "--channel", "wifi", *SAMPLES], "unknown channel 'wifi'"),
    ("eval-bad-denoiser", ["eval", "jcm-cifar10-64qam", "--denoiser", "magic", *SAMPLES], "unknown --denoiser 'magic'"),
    ("eval-bad-snr-text", ["eval", "ampsc-cifar10-4bit", "--snr", "a,b", *SAMPLES], "bad SNR list 'a,b'"),
    # attack
    ("attack-limit-zero", ["attack", "jscc-cifar10", "--limit", "0", *SAMPLES], "--limit must be >= 1, got 0"),
    ("attack-eps-negative", ["attack", "jscc-cifar10", "--eps=-1", *SAMPLES], "--eps is an L-infinity budget"),
    ("attack-steps-zero", ["attack", "jscc-cifar10", "--steps", "0", *SAMPLES], "--steps must be >= 1"),
    ("attack-out-is-a-file", ["attack", "jscc-cifar10", "--out", "afile", *SAMPLES], "--out afile is a file, not a folder"),
    ("attack-not-a-classifier", ["attack", "ampsc-cifar10-4bit", *SAMPLES], "is not a classifier"),
    ("attack-snr-out-of-range", ["attack", "jscc-cifar10", "--snr", "300", *SAMPLES], "--snr 300 dB Es/N0 is outside"),
    # send
    ("send-jpg-name", ["send", "cat.png", "--out", "out.jpg"], "the image is written as PNG (lossless), so the name must end in .png"),
    ("send-out-is-a-folder", ["send", "cat.png", "--out", "folder.png"], "--out folder.png is a folder"),
    ("send-out-under-a-file", ["send", "cat.png", "--out", "afile/r.png"], "afile is a file"),
    ("send-missing-image", ["send", "missing.png"], "image not found: missing.png"),
    ("send-not-an-image", ["send", "fake.png"], "cannot read fake.png as an image"),
    ("send-classifier", ["send", "cat.png", "--model", "vqvae-fim-at-cifar10"], "does not reconstruct images"),
    ("send-snr-out-of-range", ["send", "cat.png", "--snr", "1000"], "--snr 1000 dB Eb/N0 (1006.02 dB Es/N0 on this link) is outside"),
    # train
    ("train-epochs-fraction", ["train", "jcm-smoke", "train.epochs=1.5", "--runs", "runs", "--quiet"], "recipe key train.epochs must be an integer, got 1.5"),
    ("train-epochs-text", ["train", "jcm-smoke", "train.epochs=abc", "--runs", "runs", "--quiet"], "recipe key train.epochs must be an integer, got 'abc'"),
    ("train-epochs-negative", ["train", "ampsc-smoke", "schedule.0.epochs=-2", "--runs", "runs", "--quiet"], "schedule.0.epochs must be >= 1, got -2"),
    ("train-unknown-key", ["train", "jcm-smoke", "train.epohcs=1", "--runs", "runs", "--quiet"], "unknown recipe key 'train.epohcs'"),
    ("train-unknown-recipe", ["train", "no-such-recipe", "--runs", "runs"], "unknown recipe 'no-such-recipe'"),
    ("train-no-data", ["train", "deepjscc-cifar10-1_6-cpu", "--runs", "runs", "--quiet"], "pass --data DIR"),
    # plot
    ("plot-metric-absent", ["plot", "ber.json", "--metric", "accuracy"], "--metric accuracy: ber.json hold no accuracy curve; these files hold ber"),
    ("plot-file-without-metric", ["plot", "ber.json", "psnr.json", "--metric", "ber"], "psnr.json hold no ber curve"),
    ("plot-mixed-axes", ["plot", "ber.json", "ber.json", "psnr.json", "--metric", "psnr"], "ber.json, ber.json hold no psnr"),
    ("plot-not-json", ["plot", "broken.json"], "cannot read results file broken.json"),
    ("plot-out-under-a-file", ["plot", "ber.json", "--out", "afile/p.png"], "afile is a file"),
    # demo
    ("demo-out-is-a-file", ["demo", "--out", "afile", "--quiet"], "--out afile is a file, not a folder"),
    ("demo-snr-too-many", ["demo", "--snr", "0:1e9:1", "--quiet"], "has 1000000001 points"),
]


@pytest.mark.parametrize("argv,expected", [case[1:] for case in CLI_CASES], ids=[case[0] for case in CLI_CASES])
def test_bad_command_line_input_is_one_line_exit_2_and_writes_nothing(argv, expected, workdir, monkeypatch, capsys):
    monkeypatch.delenv("DIGISEM_DATA", raising=False)
    (workdir / "folder.png").mkdir()
    before = _files(workdir)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"digisem {argv[0]}: error: ") and "\n" not in err and "Traceback" not in err
    assert expected in err, err
    assert _files(workdir) == before


def test_plot_refuses_eb_n0_and_es_n0_curves_on_one_axis(workdir, capsys):
    write_json(workdir / "psnr-ebn0.json", {"name": "b", "results": {"snr_db": [0.0], "psnr": [20.0]}, "meta": {"snr_kind": "ebn0"}})
    assert main(["plot", "psnr.json", "psnr-ebn0.json", "--out", "p.png"]) == 2
    err = capsys.readouterr().err
    assert "different SNR axes" in err and "ebn0: psnr-ebn0.json" in err and "esn0: psnr.json" in err
    assert not (workdir / "p.png").exists()


def test_ber_bits_below_one_batch_are_honoured(workdir):
    # 200,000 bits are 48.8 blocks of 4,096: the budget is 49 whole blocks, not the 256-block batch (1,048,576)
    assert main(["ber", "--snr", "0,20", "--bits", "200000", "--target-errors", "1000000000", "--out", "b", "--quiet"]) == 0
    results = json.loads((workdir / "b" / "results.json").read_text())
    assert results["results"]["bits"] == [49 * 4096, 49 * 4096]
    assert "200704 bits per point" in results["description"]


def test_ber_with_more_streams_than_receive_antennas_warns_and_points_to_svd(workdir, capsys):
    assert main(["ber", "--channel", "mimo-8x4", "--snr", "0", "--bits", "4096", "--out", "m", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning: mimo-8x4 sends 8 streams to 4 receive antennas" in err and "mimo-8x4-svd" in err
    assert main(["ber", "--channel", "mimo-4x8", "--snr", "0", "--bits", "4096", "--out", "m2", "--quiet"]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("argv,result", [(["eval", "jscc-cifar10", "--snr", "3", "--out", "o"], "o/results.json"),
                                         (["attack", "jscc-cifar10", "--out", "o"], "o/attack.json")], ids=["eval", "attack"])
def test_limit_is_honoured(argv, result, workdir):
    assert main([*argv, "--limit", "2", *SAMPLES]) == 0
    data = json.loads((workdir / result).read_text())
    assert data.get("n_images", data.get("meta", {}).get("n_images")) == 2


def test_files_written_by_eval_follow_the_umask(workdir):
    old = os.umask(0o022)
    try:
        assert main(["eval", "deepjscc-cifar10-1_12", "--snr", "10", "--limit", "2", "--out", "e", *SAMPLES]) == 0
    finally:
        os.umask(old)
    for name in ("results.json", "psnr.png", "grid.png"):
        assert (workdir / "e" / name).stat().st_mode & 0o777 == 0o644


def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path):
    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "x.json", fail)
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_of_a_killed_write_are_removed_and_fresh_ones_kept(tmp_path):
    stale, fresh, partial, kept = tmp_path / ".state.pt.abc.tmp", tmp_path / ".model.safetensors.def.tmp", tmp_path / ".demo.xyz.partial", tmp_path / "state.pt"
    stale.write_bytes(b"")
    fresh.write_bytes(b"")
    partial.mkdir()
    (partial / "a.png").write_bytes(b"x")
    kept.write_bytes(b"real")
    hour_ago = time.time() - 3600
    for path in (stale, partial, kept):
        os.utime(path, (hour_ago, hour_ago))
    assert remove_stale_temporaries(tmp_path) == [stale, partial]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh.name, kept.name])


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.decoder = nn.Linear(3, 3)


def test_a_stage_run_again_after_kill_9_cleans_its_zero_byte_temporaries(tmp_path):
    from digisem.systems.base import Stage
    from digisem.train.loop import fit_stage

    stage_dir = tmp_path / "stage"
    stage_dir.mkdir()
    leftover = stage_dir / ".state.pt.k9.tmp"
    leftover.write_bytes(b"")
    os.utime(leftover, (time.time() - 3600,) * 2)
    dataset = torch.utils.data.TensorDataset(torch.randn(8, 3))

    def loss(model, batch, noise):
        return model.decoder(batch[0]).pow(2).mean(), {}

    fit_stage(_Tiny(), Stage("s", 1, 1e-3, ("decoder",), loss), dataset, stage_dir, batch_size=4, seed=0, device=torch.device("cpu"), progress=False)
    assert not leftover.exists()
    assert {"state.pt", "done.json", "model.safetensors"} <= {p.name for p in stage_dir.iterdir()}
    assert not [p for p in stage_dir.iterdir() if p.name.endswith(".tmp")]


def test_an_interrupted_demo_leaves_the_old_folder_as_it_was(workdir, monkeypatch):
    import digisem.demo

    out = workdir / "demo"
    out.mkdir()
    (out / "report.html").write_text("seed 7")

    def interrupted(folder, snrs, seed=0, progress=True):
        (folder / "psnr.png").write_bytes(b"new")
        raise KeyboardInterrupt

    monkeypatch.setattr(digisem.demo, "run_demo", interrupted)
    assert main(["demo", "--out", str(out), "--quiet"]) == 130
    assert _files(out) == ["report.html"] and (out / "report.html").read_text() == "seed 7"
    assert [p.name for p in workdir.iterdir() if p.name.endswith(".partial")] == []

    def finished(folder, snrs, seed=0, progress=True):
        (folder / "psnr.png").write_bytes(b"new")
        return atomic_write(folder / "report.html", lambda tmp: tmp.write_text(f"seed {seed}"))

    monkeypatch.setattr(digisem.demo, "run_demo", finished)
    assert main(["demo", "--out", str(out), "--seed", "3", "--quiet"]) == 0
    assert (out / "report.html").read_text() == "seed 3" and (out / "psnr.png").read_bytes() == b"new"


def _flip_tensor_byte(path):
    data = bytearray(path.read_bytes())
    header = int.from_bytes(data[:8], "little")
    data[8 + header + 100] ^= 0xFF
    path.write_bytes(bytes(data))


def test_flipped_bytes_in_a_run_folders_weights_are_refused(workdir, capsys):
    model, metadata = zoo.load("deepjscc-cifar10-1_12")
    run = workdir / "run"
    save_weights(model, run / "model.safetensors", metadata)
    assert read_weights(run / "model.safetensors")[1] == metadata
    _flip_tensor_byte(run / "model.safetensors")
    with pytest.raises(CheckpointError, match="tensors no longer match the sha256"):
        read_weights(run / "model.safetensors")
    assert main(["eval", str(run), "--snr", "10", "--out", "e", *SAMPLES]) == 2
    assert "is corrupted" in capsys.readouterr().err
    assert not (workdir / "e").exists()


def test_zoo_listing_goes_on_past_a_corrupted_file(tmp_path, monkeypatch, capsys):
    for name in ("deepjscc-cifar10-1_12", "deepjscc-cifar10-1_6"):
        shutil.copy(zoo.zoo_dir() / f"{name}.safetensors", tmp_path / f"{name}.safetensors")
    sums = "".join(f"{hashlib.sha256((tmp_path / f'{n}.safetensors').read_bytes()).hexdigest()}  {n}.safetensors\n" for n in ("deepjscc-cifar10-1_12", "deepjscc-cifar10-1_6"))
    (tmp_path / "SHA256SUMS").write_text(sums)
    _flip_tensor_byte(tmp_path / "deepjscc-cifar10-1_12.safetensors")
    monkeypatch.setattr(zoo, "zoo_dir", lambda: tmp_path)
    assert main(["zoo"]) == 1
    captured = capsys.readouterr()
    assert "deepjscc-cifar10-1_6" in captured.out and "DeepJSCC (1/6" in captured.out
    assert "deepjscc-cifar10-1_12" in captured.out
    assert "deepjscc-cifar10-1_12: zoo weights" in captured.err and "are corrupted" in captured.err


@pytest.mark.parametrize("bug", [KeyError("missing"), ValueError("math domain error"), RuntimeError("shape mismatch")], ids=["KeyError", "ValueError", "RuntimeError"])
def test_a_real_bug_keeps_its_traceback(bug, monkeypatch, capsys):
    """Only the library's own argument checks (InputError) are usage errors: a ValueError from
    deep inside (torch, numpy, a slip in digisem) is a bug and propagates with its traceback."""

    def buggy(args):
        raise bug

    monkeypatch.setattr(cli, "command_zoo", buggy)
    with pytest.raises(type(bug)):
        main(["zoo"])
    assert "internal error, a bug in digisem" in capsys.readouterr().err


def test_the_named_errors_are_input_errors_and_the_cli_gives_exit_2_for_them(monkeypatch, capsys):
    from digisem.snr import SNRRangeError
    from digisem.train.recipe import RecipeError

    assert all(issubclass(error, InputError) and issubclass(error, ValueError) for error in (SNRRangeError, RecipeError, cli.UsageError))

    def checked(args):
        raise InputError("--limit must be >= 1, got 0")

    monkeypatch.setattr(cli, "command_zoo", checked)
    assert main(["zoo"]) == 2
    assert capsys.readouterr().err.strip() == "digisem zoo: error: --limit must be >= 1, got 0"


def _malicious(marker):
    class Malicious:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    return Malicious()


def _lib_cases():
    from digisem.data import data_root
    from digisem.link import AWGN, BSCLink, from_spec, make_channel, noise_variance
    from digisem.link.simulate import simulate_ber
    from digisem.snr import parse_snr_range

    bsc = BSCLink(modulation="16qam")
    x = torch.ones(2, 4, dtype=torch.complex64)
    return [
        ("bsc-snr-low", lambda: bsc.flip_probability(-1000.0), InputError, r"snr_db \(ebn0\) must be finite and in \[-50, 100\] dB"),
        ("bsc-snr-high", lambda: bsc.flip_probability(101.0), InputError, r"in \[-50, 100\] dB"),
        ("bsc-snr-nan", lambda: bsc.flip_probability(math.nan), InputError, "must be finite"),
        ("bsc-snr-batch", lambda: bsc.transmit_bits(torch.zeros(2, 8, dtype=torch.uint8), torch.tensor([0.0, 500.0])), InputError, "500"),
        ("bsc-p", lambda: BSCLink(p=0.7), InputError, r"must lie in \[0, 0.5\]"),
        ("awgn-snr", lambda: AWGN()(x, 1000.0), InputError, r"in \[-50.0, 100.0\] dB"),
        ("noise-shape", lambda: noise_variance(torch.zeros(3), x), InputError, r"shape \[B\] = \[2\]"),
        ("real-symbols", lambda: from_spec("awgn", "symbols")(torch.ones(2, 4), 10.0), TypeError, "must be complex"),
        ("zf-8x4", lambda: make_channel("mimo-8x4-zf"), InputError, "ZF detection needs num_tx <= num_rx"),
        ("channel-name", lambda: make_channel("wifi"), InputError, "unknown channel 'wifi'"),
        ("bits-on-symbols", lambda: from_spec("16qam-awgn", "symbols"), InputError, "carries bits"),
        ("spec-key", lambda: from_spec({"kind": "bits", "colour": 1}), InputError, r"unknown keys \['colour'\]"),
        ("simulate-bits", lambda: simulate_ber(from_spec("16qam-awgn"), [0.0], max_bits=0), InputError, "must all be >= 1"),
        ("snr-range-long", lambda: parse_snr_range("0:1e9:1"), InputError, "at most 1000"),
        ("snr-range-inf", lambda: parse_snr_range("0:inf:1"), InputError, "finite"),
        ("no-data-root", lambda: data_root(None), FileNotFoundError, r"--data DIR \(root=DIR in Python\)"),
    ]


@pytest.mark.parametrize("index", range(16), ids=[case[0] for case in _lib_cases()])
def test_bad_library_input_raises_a_named_error(index, monkeypatch):
    monkeypatch.delenv("DIGISEM_DATA", raising=False)
    _, call, error, pattern = _lib_cases()[index]
    with pytest.raises(error, match=pattern):
        call()


def test_a_malicious_state_file_is_refused_without_running_it_and_says_not_to_retry(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"epoch": _malicious(marker)}, tmp_path / "state.pt")
    with pytest.raises(CheckpointError, match=r"Do not retry with torch.load\(weights_only=False\): that could run code") as raised:
        load_state(tmp_path / "state.pt")
    assert "will likely succeed" not in str(raised.value)
    assert not marker.exists()


def test_a_garbage_cifar10_batch_is_one_error_naming_the_file_and_the_fix(tmp_path):
    from digisem.data import CIFAR10, CIFAR10_PICKLE_DIR

    folder = tmp_path / CIFAR10_PICKLE_DIR
    folder.mkdir()
    for name in ("test_batch", "batches.meta"):
        (folder / name).write_bytes(b"\x80\x04garbage")
    with pytest.raises(ValueError, match="test_batch is not a valid CIFAR-10 batch file.*digisem download cifar10"):
        CIFAR10(tmp_path, split="test")
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": _malicious(tmp_path / "pwned"), b"labels": [0]}, protocol=2))
    with pytest.raises(ValueError, match="refusing to load global"):
        CIFAR10(tmp_path, split="test")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("channel", ["awgn", "rayleigh", "rayleigh-block", "mimo-4x4", "mimo-4x8-zf", "mimo-8x4-svd"])
def test_complex128_symbols_come_back_as_complex128(channel, generator):
    from digisem.link import from_spec

    x = torch.randn(2, 8, dtype=torch.complex128, generator=generator)
    received = from_spec(channel, "symbols")(x, 60.0, generator)
    assert received.symbols.dtype == torch.complex128 and received.noise_var.dtype == torch.float64
    # at 60 dB the symbols arrive almost unchanged (power-normalized)
    normalized = x / x.abs().pow(2).mean(-1, keepdim=True).sqrt()
    assert torch.allclose(received.symbols, normalized, atol=0.05)


def test_staged_folder_moves_every_file_or_none(tmp_path):
    out = tmp_path / "out"
    with staged_folder(out) as stage:
        (stage / "plots").mkdir()
        (stage / "plots" / "a.png").write_bytes(b"a")
        (stage / "report.html").write_text("r")
    assert _files(out) == ["plots", "plots/a.png", "report.html"]
    with pytest.raises(RuntimeError), staged_folder(out) as stage:
        (stage / "report.html").write_text("half")
        raise RuntimeError("crash")
    assert (out / "report.html").read_text() == "r"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
