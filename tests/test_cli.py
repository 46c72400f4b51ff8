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


# ---------------------------------------------------------------------------------------------------
# digisem eval / send / zoo: one code path for every registered system (zoo models, bundled samples)


@pytest.fixture
def image_file(tmp_path):
    """A 64x48 PNG made of bundled sample images (tiles into 32x32 blocks)."""
    import torch

    from digisem.data import sample_images
    from digisem.imageio import write_image

    images = sample_images("cifar")[0]
    picture = torch.cat([torch.cat([images[0], images[1]], 2), torch.cat([images[2], images[3]], 2)], 1)[:, :48]
    return write_image(picture, tmp_path / "photo.png")


def test_eval_jcm_over_a_rayleigh_link_writes_psnr_and_latent_mse(tmp_path, capsys):
    out = tmp_path / "jcm"
    assert main(["eval", "jcm-cifar10-64qam", "--channel", "rayleigh", "--snr", "0:18:6", "--data", "samples", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    curves = results["results"]
    assert curves["snr_db"] == [0.0, 6.0, 12.0, 18.0]
    assert len(curves["psnr"]) == len(curves["latent_mse"]) == 4
    assert curves["psnr"][-1] > curves["psnr"][0], "more SNR, better pictures"
    assert curves["latent_mse"][-1] < curves["latent_mse"][0]
    assert results["meta"]["link"] == "rayleigh" and results["meta"]["snr_kind"] == "esn0" and results["meta"]["n_images"] == 8
    for name in ("psnr.png", "latent_mse.png", "grid.png"):
        assert (out / name).is_file(), name
    assert "latent MSE" in capsys.readouterr().out


def test_eval_ampsc_without_its_restorer(tmp_path):
    assert main(["eval", "ampsc-cifar10-4bit", "--no-restorer", "--data", "samples", "--out", str(tmp_path / "bare"), "--quiet"]) == 0
    bare = json.loads((tmp_path / "bare" / "results.json").read_text())
    assert bare["results"]["snr_db"] == [float(v) for v in range(19)], "AMP-SC's default sweep: Eb/N0 0:18:1"
    assert bare["meta"]["snr_kind"] == "ebn0" and bare["meta"]["link"] == "bsc"
    assert bare["name"].endswith("without its restorer") and "ber" in bare["results"]
    assert main(["eval", "ampsc-cifar10-4bit", "--snr", "0", "--data", "samples", "--out", str(tmp_path / "full"), "--quiet"]) == 0
    full = json.loads((tmp_path / "full" / "results.json").read_text())
    # the same bit errors at 0 dB (same seed), and IRSNet repairs part of the damage
    assert full["results"]["ber"][0] == bare["results"]["ber"][0]
    assert full["results"]["psnr"][0] > bare["results"]["psnr"][0]


def test_eval_no_restorer_on_a_system_without_one_is_refused(tmp_path, capsys):
    assert main(["eval", "jcm-cifar10-64qam", "--no-restorer", "--data", "samples", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "has no restorer" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_eval_of_a_restorer_is_refused_naming_its_codec(tmp_path, capsys):
    assert main(["eval", "scdm-cifar10-64qam", "--data", "samples", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "not a system" in err and "digisem eval jcm-cifar10-64qam --denoiser scdm --scdm scdm-cifar10-64qam" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("verb", [["eval", "jcm-cifar10-64qam"], ["attack", "vqvae-fim-at-cifar10"]])
def test_limit_zero_is_a_usage_error_in_one_line(verb, tmp_path, capsys):
    assert main([*verb, "--limit", "0", "--data", "samples", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"digisem {verb[0]}: error: --limit must be >= 1, got 0"
    assert not (tmp_path / "x").exists()


def test_eval_with_a_bad_link_spec_is_one_line(tmp_path, capsys):
    assert main(["eval", "jcm-cifar10-64qam", "--channel", "16qam-awgn", "--snr", "0", "--data", "samples", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "carries bits" in err and len(err.strip().splitlines()) == 1


def test_send_refuses_a_classifier(image_file, tmp_path, capsys):
    out = tmp_path / "received.png"
    assert main(["send", str(image_file), "--model", "vqvae-fim-at-cifar10", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "does not reconstruct images" in err and "digisem send takes an image system" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_send_refuses_a_restorer(image_file, tmp_path, capsys):
    assert main(["send", str(image_file), "--model", "scdm-cifar10-64qam", "--out", str(tmp_path / "r.png")]) == 2
    assert "does not reconstruct images" in capsys.readouterr().err


@pytest.mark.parametrize("model,extra", [("jcm-cifar10-64qam", ["--snr", "12"]), ("ampsc-cifar10-4bit", ["--channel", "bsc"]), ("deepjscc-cifar10-1_6", [])])
def test_send_works_for_image_systems_of_any_family(model, extra, image_file, tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "received.png"
    assert main(["send", str(image_file), "--model", model, "--out", str(out), *extra]) == 0
    with Image.open(out) as picture:
        assert picture.size == (64, 48)
    text = capsys.readouterr().out
    assert "in 4 blocks of 32x32" in text and "PSNR" in text


def test_zoo_lists_every_family(capsys):
    from digisem import zoo
    from digisem.weights import read_weights

    assert main(["zoo"]) == 0
    text = capsys.readouterr().out
    families = {read_weights(zoo.resolve_weights(name))[1]["system"] for name in zoo.zoo_names()}
    assert {"ampsc", "jcm", "scdm", "vqvae", "deepjscc"} <= families
    for name in zoo.zoo_names():
        assert name in text


def test_zoo_shows_each_models_recorded_result_from_its_metadata(capsys):
    """The 'recorded test result' column: the PSNR average of an image model and the 3 dB accuracy of
    a classifier, as recorded in each zoo file's results."""
    from digisem import zoo
    from digisem.weights import read_weights

    assert main(["zoo"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    for name in ("ampsc-cifar10-4bit", "vqvae-fim-at-cifar10"):
        results = read_weights(zoo.resolve_weights(name))[1]["results"]
        if "psnr_avg_0_18" in results.get("summary", {}):
            assert f"{results['summary']['psnr_avg_0_18']:.2f} dB avg 0-18 dB" in rows[name]
        else:
            curves = results["results"]
            assert f"accuracy {curves['accuracy'][curves['snr_db'].index(3.0)]:.3f} at 3 dB" in rows[name]
