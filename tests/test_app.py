"""``digisem app``: the page's handlers against the library's own evaluate path, bad input, and a
real browser (headless Chromium) driving the served page.

The handler tests need no Gradio; the layout and browser tests skip with the reason where Gradio,
Selenium or Chromium and its driver are absent (``pip install -e ".[app]" selenium``, ``apt-get
install chromium chromium-driver``).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import TensorDataset

from digisem import app, cli, zoo
from digisem.attacks import from_spec as attack_from_spec
from digisem.data import labelled_samples, sample_images
from digisem.evaluate import sweep
from digisem.imageio import read_image, tile
from digisem.systems import FAMILIES
from digisem.systems.scdm import MMSEDenoiser

CAT = "cifar_cat_0000"


def _sample(name: str = CAT) -> torch.Tensor:
    images, names = sample_images("cifar")
    return images[names.index(name)]


def _write_png(path: Path, image: torch.Tensor) -> Path:
    Image.fromarray((image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()).save(path)
    return path


# ---------------------------------------------------------------------------------------------------
# the catalog comes from the registry and the zoo


def test_the_catalog_lists_every_zoo_system_by_family_with_its_controls():
    groups = app.catalog()
    listed = {item.name: item for items in groups.values() for item in items}
    systems = [name for name in zoo.zoo_names() if FAMILIES[zoo.load(name)[1]["system"]].kind == "system"]
    assert sorted(listed) == sorted(systems)
    assert all(item.family == family for family, items in groups.items() for item in items)
    ampsc, jcm = listed["ampsc-cifar10-4bit"], listed["jcm-cifar10-64qam"]
    assert "Eb/N0" in ampsc.snr_label and "Es/N0" in jcm.snr_label
    assert ampsc.restorer == "IRSNet" and jcm.restorer is None
    assert jcm.denoisers[:2] == ("none", "mmse") and {"scdm-cifar10-64qam", "scdm-tweedie-cifar10-64qam"} <= set(jcm.denoisers)
    assert jcm.slow_denoisers == ("scdm-cifar10-64qam",)
    # links from the contract: bit channels (and the BSC) for integer payloads, symbol channels for symbols
    assert [key for _, key in ampsc.links][:2] == [app.TRAINED, "awgn"] and "bsc" not in [key for _, key in ampsc.links]
    assert "bsc" not in [key for _, key in jcm.links] and "16qam-awgn" not in [key for _, key in jcm.links]
    assert listed["vqvae-fim-at-cifar10"].task == "classification"


# ---------------------------------------------------------------------------------------------------
# the page's numbers are the evaluate path's numbers


@pytest.mark.parametrize("model, key, snr, denoiser", [("ampsc-cifar10-4bit", app.TRAINED, 6.0, "none"), ("ampsc-cifar10-4bit", "awgn", 3.0, "none"),
                                                       ("jcm-cifar10-64qam", "rayleigh", 0.0, "mmse"), ("deepjscc-cifar10-1_6", app.TRAINED, 4.0, "none")])
def test_the_page_psnr_is_the_sweeps_psnr_at_the_same_seed(model, key, snr, denoiser):
    result = app.transmit(app.Request(model, CAT, key, snr, denoiser=denoiser, seed=3))
    system, metadata = zoo.load(model)
    if denoiser == "mmse":
        system = system.with_parts(restorer=MMSEDenoiser(system.prior_symbols()))
    spec = (zoo.recorded_link(metadata) or FAMILIES[metadata["system"]].default_link) if key == app.TRAINED else key
    curves = sweep(system, spec, [snr], TensorDataset(_sample()[None]), snr_kind=FAMILIES[metadata["system"]].snr_kind, seed=3, progress=False)
    assert result.psnr == pytest.approx(curves["psnr"][0], abs=1e-4)
    assert result.ssim == pytest.approx(curves["ssim"][0], abs=1e-4)
    assert result.channel_uses_per_image == curves["channel_uses"][0]
    if "ber" in curves:
        assert result.ber == pytest.approx(curves["ber"][0])
    # the curve is the same sweep over more points, with the current point on it when it is a grid point
    if snr in result.curve["snr_db"]:
        assert result.curve["psnr"][result.curve["snr_db"].index(snr)] == pytest.approx(result.psnr, abs=1e-4)


def test_a_tiled_upload_scores_as_the_sweep_over_its_tiles(tmp_path):
    image = torch.cat([_sample(), _sample("cifar_ship_0000")], 2)  # 32 x 64: two blocks
    path = _write_png(tmp_path / "pair.png", image)
    result = app.transmit(app.Request("ampsc-cifar10-4bit", str(path), "awgn", 9.0, seed=1))
    tiles, _ = tile(read_image(path), 32)
    curves = sweep(zoo.load("ampsc-cifar10-4bit")[0], "awgn", [9.0], TensorDataset(tiles), snr_kind="ebn0", seed=1, progress=False)
    assert result.psnr == pytest.approx(curves["psnr"][0], abs=1e-4)
    assert result.received.shape == (32, 64, 3) and any("tiled into 2 blocks" in note for note in result.notes)


def test_classifier_top3_clean_and_attacked_match_the_sweeps_accuracy():
    model = "vqvae-fim-at-cifar10"
    images, labels = labelled_samples().tensors
    epsilon, seed, snr = 0.016, 2, 3.0
    result = app.transmit(app.Request(model, CAT, None, snr, epsilon=epsilon, seed=seed))
    index = sample_images("cifar")[1].index(CAT)
    attack = attack_from_spec({"kind": "ifgsm", "epsilon": epsilon, "step": 1.25 * epsilon / app.ATTACK_STEPS, "steps": app.ATTACK_STEPS})
    system, metadata = zoo.load(model)
    curves = sweep(system, zoo.recorded_link(metadata), [snr], TensorDataset(images[index:index + 1], labels[index:index + 1]), attack=attack, seed=seed, progress=False)
    assert len(result.top3) == 3 and len(result.top3_attacked) == 3
    assert sum(result.top3.values()) <= 1 + 1e-6 and list(result.top3.values()) == sorted(result.top3.values(), reverse=True)
    assert float(max(result.top3, key=result.top3.get) == "cat") == curves["accuracy"][0]
    assert float(max(result.top3_attacked, key=result.top3_attacked.get) == "cat") == curves["accuracy_attacked"][0]
    assert result.psnr is None and result.received is None


def test_the_snr_moves_the_image_the_constellation_and_the_marker():
    low = app.transmit(app.Request("jcm-cifar10-64qam", CAT, None, -12.0))
    high = app.transmit(app.Request("jcm-cifar10-64qam", CAT, None, 18.0))
    assert high.psnr > low.psnr + 3 and not np.array_equal(low.received, high.received)
    assert low.sent is not None and len(np.unique(np.round(low.sent, 4))) <= 64  # a learned 64-QAM
    assert np.abs(low.received_symbols - low.sent).mean() > np.abs(high.received_symbols - high.sent).mean()
    figure = app.curve_figure(high)
    marker = [line for line in figure.axes[0].lines if line.get_marker() == "*"][0]
    assert list(marker.get_xdata()) == [18.0] and marker.get_ydata()[0] == pytest.approx(high.psnr)
    assert len(app.scatter_figure(low).axes[0].collections) == 2  # received points and the sent constellation


def test_accounting_ber_and_the_classical_reference_at_the_same_channel_uses():
    result = app.transmit(app.Request("ampsc-cifar10-4bit", CAT, "awgn", 6.0))
    assert (result.bits_per_image, result.channel_uses_per_image) == (2048, 512)
    assert 0 < result.ber < 0.5 and result.sent.shape == (app.SCATTER_POINTS,) and len(np.unique(np.round(result.sent, 4))) <= 16
    reference = result.classical
    assert reference["channel_uses"] <= 512 and reference["payload_bits"] == 1024 and np.isfinite(reference["psnr"])
    # the BSC has no constellation; its classical reference runs on the AWGN channel it models, at the same Es/N0
    bsc = app.transmit(app.Request("ampsc-cifar10-4bit", CAT, app.TRAINED, 6.0))
    assert bsc.sent is None and bsc.classical["link"] == "5G LDPC 16qam-1/2 on awgn" and bsc.classical["esn0"] == pytest.approx(6.0 + 10 * np.log10(4))
    # JCM's 128 channel uses carry 256 bits at 16-QAM 1/2: the abbreviated JPEG fits at 18 dB; at -6 dB the code fails, and the page says so
    clear, noisy = (app.transmit(app.Request("jcm-cifar10-64qam", CAT, None, snr)) for snr in (18.0, -6.0))
    assert clear.classical["payload_bits"] == noisy.classical["payload_bits"] == 256 and clear.classical["channel_uses"] == 128
    assert clear.classical["failures"] == 0 and noisy.classical["failures"] == 1 and "1 of 1 blocks failed" in app.summary(noisy)
    # one codeword needs k >= 12 information bits: a budget too small for it is a note, not an error
    assert "5G LDPC codeword" in app.classical(_sample()[None], "awgn", "symbols", app.receiver("jcm-cifar10-64qam").link_for("awgn"), 6.0, "esn0", 2, 0)["note"]
    text = app.summary(result)
    assert "PSNR" in text and "2,048" in text and "BER" in text and "classical JPEG + LDPC" in text


def test_receiver_options_change_the_result_and_report_progress():
    on = app.transmit(app.Request("ampsc-cifar10-4bit", CAT, "awgn", 3.0, restorer=True))
    off = app.transmit(app.Request("ampsc-cifar10-4bit", CAT, "awgn", 3.0, restorer=False))
    assert on.psnr != off.psnr
    calls = []
    tweedie = app.transmit(app.Request("jcm-cifar10-64qam", CAT, None, -6.0, denoiser="scdm-tweedie-cifar10-64qam"), progress=lambda done, total: calls.append(done))
    none = app.transmit(app.Request("jcm-cifar10-64qam", CAT, None, -6.0))
    assert calls and calls == list(range(1, len(calls) + 1)) and tweedie.psnr != none.psnr
    assert tweedie.receiver == "denoiser scdm-tweedie-cifar10-64qam (sampler Tweedie (1 step))" and none.receiver == "denoiser none"
    assert off.receiver == "IRSNet off" and "receiver: IRSNet off" in app.summary(off)


def test_large_uploads_are_resized_and_tiled_and_the_page_says_so(tmp_path):
    path = _write_png(tmp_path / "big.png", torch.rand(3, 300, 200))
    result = app.transmit(app.Request("deepjscc-cifar10-1_6", str(path), None, 10.0), curve=False)
    assert result.original.shape == (128, 85, 3) and result.received.shape == (128, 85, 3)
    assert any("resized from 200x300 to 85x128" in note for note in result.notes) and any("tiled into 12 blocks" in note for note in result.notes)
    classified = app.transmit(app.Request("vqvae-fim-at-cifar10", str(path), None, 3.0, epsilon=0.0), curve=False)
    assert classified.original.shape == (32, 32, 3) and "classifier" in classified.notes[0] and classified.top3_attacked is None


# ---------------------------------------------------------------------------------------------------
# bad input: one message on the page


def test_bad_input_gives_a_message_not_a_stack_trace(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    small = _write_png(tmp_path / "small.png", torch.rand(3, 16, 40))
    cases = [
        (app.Request("ampsc-cifar10-4bit", str(text)), "not an image"),
        (app.Request("ampsc-cifar10-4bit", str(small)), "smaller than the 32x32"),
        (app.Request("ampsc-cifar10-4bit", CAT, snr_db=40.0), "outside ampsc-cifar10-4bit's range, Eb/N0 0 to 18 dB"),
        (app.Request("jcm-cifar10-64qam", CAT, snr_db=float("nan")), "outside"),
        (app.Request("no-such-model", CAT), "not available"),
        (app.Request("scdm-cifar10-64qam", CAT), "pick the codec it serves, jcm-cifar10-64qam"),
        (app.Request("jcm-cifar10-64qam", CAT, link="bsc"), "cannot use the link 'bsc'"),
        (app.Request("ampsc-cifar10-4bit", CAT, denoiser="mmse"), "has no denoiser 'mmse'"),
        (app.Request("vqvae-fim-at-cifar10", CAT, epsilon=2.0), "epsilon must lie in [0, 0.25]"),
    ]
    for request, expected in cases:
        with pytest.raises(app.AppError, match=re.escape(expected)):
            app.transmit(request)
        message, *outputs = app.page_outputs(request)
        assert message.startswith("⚠️") and expected in message and "Traceback" not in message
        assert outputs[:4] == [None, None, None, None]


def test_digisem_app_without_gradio_prints_the_install_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    assert cli.main(["app", "--port", "7999"]) == 2
    assert app.INSTALL_HINT in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["app", "--port", "x"])


# ---------------------------------------------------------------------------------------------------
# the Gradio page and a real browser


def test_the_gradio_page_builds_with_every_control():
    gr = pytest.importorskip("gradio", reason="the app extra is not installed (pip install -e \".[app]\")")
    page = app.build_page()
    ids = {block.elem_id for block in page.blocks.values() if getattr(block, "elem_id", None)}
    assert {"model", "sample", "upload", "link", "snr", "denoiser", "slow", "restorer", "epsilon", "seed", "message", "original", "received", "numbers", "scatter", "curve"} <= ids
    model = next(block for block in page.blocks.values() if getattr(block, "elem_id", None) == "model")
    assert isinstance(model, gr.Dropdown) and len(model.choices) == sum(len(items) for items in app.catalog().values())


def _browser():
    """``(chromium, chromedriver)`` paths, or a skip with the reason."""
    pytest.importorskip("gradio", reason="the app extra is not installed (pip install -e \".[app]\")")
    pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("headless Chromium is absent (apt-get install chromium chromium-driver)")
    return chromium, driver


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served_page():
    """``digisem app`` on a free local port, stopped after the test: its URL."""
    _browser()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "digisem.cli", "app", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(url, timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"digisem app did not serve {url} (exit status {server.poll()})") from None
                time.sleep(1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_real_browser_moves_the_snr_and_sees_the_image_and_psnr_change(served_page, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    chromium, driver_path = _browser()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1250"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        browser.get(served_page)
        wait = WebDriverWait(browser, 120, poll_frequency=0.5)

        def state():
            numbers = browser.find_element(By.ID, "numbers").text
            images = browser.find_elements(By.CSS_SELECTOR, "#received img")
            found = re.search(r"PSNR ([\d.]+) dB", numbers)
            return (float(found.group(1)) if found else None), (images[0].get_attribute("src") if images else None)

        wait.until(lambda _: all(state()))
        first = state()
        # a channel with a constellation to show: type into the filterable dropdown, Enter picks the match
        channel = browser.find_element(By.CSS_SELECTOR, "#link input")
        channel.click()
        channel.send_keys(Keys.CONTROL, "a")
        channel.send_keys("16qam-awgn", Keys.ENTER)
        wait.until(lambda _: channel.get_attribute("value") == "16qam-awgn" and all(state()) and state() != first)  # the BSC's point gave other numbers
        wait.until(lambda _: browser.find_elements(By.CSS_SELECTOR, "#scatter img, #scatter svg"))
        psnr, image = state()
        box = browser.find_element(By.CSS_SELECTOR, "#snr input[type=number]")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys("0", Keys.ENTER)
        wait.until(lambda _: state()[0] is not None and state()[0] != psnr and state()[1] not in (None, image))
        changed_psnr, changed_image = state()
        assert changed_psnr < psnr and changed_image != image
        assert "⚠️" not in browser.find_element(By.ID, "message").text
        browser.save_screenshot(str(tmp_path / "app.png"))
        if os.environ.get("DIGISEM_APP_SCREENSHOT"):
            shutil.copy(tmp_path / "app.png", os.environ["DIGISEM_APP_SCREENSHOT"])
        assert (tmp_path / "app.png").stat().st_size > 10_000
    finally:
        browser.quit()
