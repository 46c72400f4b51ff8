"""``digisem demo``: the bundled sample images through pretrained systems over the real 16-QAM link.

Writes to the output folder a PSNR-vs-SNR plot (real 16-QAM AWGN link, and the paper's BSC model for
comparison), a reconstruction grid, the results JSON files and a report (``report.html``, which opens
in a browser, and ``report.md``). Needs no network and no data folder.
"""

from __future__ import annotations

import html
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from . import zoo
from .data import sample_images
from .evaluate import evaluate_images, make_image_link
from .io import atomic_write, run_metadata, write_json
from .plots import plot_metric, reconstruction_grid

DEMO_MODELS = ("ampsc-cifar10-4bit", "softhe22-cifar10-4bit")
GRID_SNRS = (0.0, 6.0, 12.0)


def run_demo(out: str | Path, snrs: list[float], models: tuple[str, ...] = DEMO_MODELS, seed: int = 0, progress: bool = True) -> Path:
    """Run the demo; returns the path of ``report.html``."""
    out = Path(out)
    images, names = sample_images("cifar")
    dataset = TensorDataset(images)
    curves_list, rows, table = [], [("original", images)], []
    for model_name in models:
        model, metadata = zoo.load(model_name)
        label = metadata.get("name", model_name)
        for channel, description in (("awgn", "16-QAM AWGN"), ("bsc", "BSC")):
            curves = evaluate_images(model, dataset, snrs, channel, batch_size=len(dataset), seed=seed, progress=progress)
            results = {"name": f"{label} ({description})", "model": model_name, "description": f"{label} on the bundled samples over {description}", "results": curves,
                       "meta": run_metadata(seed, "cpu", dataset="bundled sample images", n_images=len(dataset), channel=channel, snr_kind="ebn0", modulation="16qam")}
            write_json(out / f"{model_name}-{channel}.json", results)
            curves_list.append(results)
            if channel == "awgn":
                table.append((label, curves["psnr"]))
        image_link = make_image_link("awgn")
        with torch.no_grad():
            for snr in GRID_SNRS:
                generator = torch.Generator().manual_seed(seed)
                rows.append((f"{label} {snr:g} dB", image_link.send(model, images, snr, generator)["x_hat"]))
    plot_metric(curves_list, "psnr", out / "psnr.png", title="bundled samples, 4 bits/value, 16-QAM Gray")
    reconstruction_grid(rows, out / "grid.png", title="received over the real 16-QAM AWGN link (Eb/N0)")
    return write_report(out, snrs, table, names)


def write_report(out: Path, snrs: list[float], table: list[tuple[str, list[float]]], names: list[str]) -> Path:
    """``report.md`` and ``report.html`` with the PSNR table, the plot and the grid."""
    header = "| system | " + " | ".join(f"{s:g} dB" for s in snrs) + " |"
    lines = ["# digisem demo", "", f"The {len(names)} bundled CIFAR-10 sample images, sent as 4-bit integers over a real 16-QAM Gray link "
             "(AWGN, hard decisions; SNR is Eb/N0) by pretrained systems from the zoo. PSNR in dB (mean over images):", "",
             header, "|" + "---|" * (len(snrs) + 1)]
    lines += ["| " + label + " | " + " | ".join(f"{v:.2f}" for v in values) + " |" for label, values in table]
    lines += ["", "![PSNR vs SNR](psnr.png)", "", "![reconstructions](grid.png)", ""]
    atomic_write(out / "report.md", lambda tmp: tmp.write_text("\n".join(lines)))
    cells = "".join(f"<th>{s:g} dB</th>" for s in snrs)
    body = "".join(f"<tr><td>{html.escape(label)}</td>" + "".join(f"<td>{v:.2f}</td>" for v in values) + "</tr>" for label, values in table)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>digisem demo</title>"
            f"<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td,th{{padding:.2em .6em;text-align:right}}</style></head><body>"
            f"<h1>digisem demo</h1><p>{html.escape(lines[2])}</p><table><tr><th>system</th>{cells}</tr>{body}</table>"
            f"<p><img src='psnr.png' alt='PSNR vs SNR'></p><p><img src='grid.png' alt='reconstructions' style='max-width:100%'></p></body></html>")
    return atomic_write(out / "report.html", lambda tmp: tmp.write_text(page))
