"""Plots from results JSON files (the schema of DESIGN.md): BER curves, and any metric against SNR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .io import atomic_write  # noqa: E402

METRIC_LABELS = {"ber": "bit error rate", "bler": "block error rate", "psnr": "PSNR (dB)", "ssim": "SSIM", "ms_ssim": "MS-SSIM", "accuracy": "accuracy"}
LOG_METRICS = ("ber", "bler")


def snr_axis_label(results: dict[str, Any]) -> str:
    """Axis label for the SNR of a results file, e.g. 'Eb/N0 (dB)'."""
    kind = results.get("meta", {}).get("snr_kind", "esn0")
    return {"ebn0": "Eb/N0 (dB)", "esn0": "Es/N0 (dB)"}.get(kind, "SNR (dB)")


def plot_metric(results_list: list[dict[str, Any]], metric: str, path: str | Path, title: str | None = None) -> Path:
    """Plot ``metric`` against ``results.snr_db`` for every results dict that has it, onto one PNG.

    BER-like metrics use a log axis and skip zero counts; keys ``<metric>_theory`` and
    ``<metric>_<words>_theory`` (e.g. ``ber_uncoded_theory``) are drawn as lines of the same colour,
    the simulation as markers.
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for results in results_list:
        curves = results["results"]
        if metric not in curves:
            continue
        snr = curves["snr_db"]
        values = curves[metric]
        if metric in LOG_METRICS:
            shown = [(s, v) for s, v in zip(snr, values) if v is not None and v > 0]
        else:
            shown = [(s, v) for s, v in zip(snr, values) if v is not None]
        if not shown:
            continue
        theory_keys = [key for key in curves if key.startswith(f"{metric}_") and key.endswith("theory")]
        line = ax.plot(*zip(*shown), "o" if theory_keys else "o-", label=results["name"])[0]
        for key, style in zip(theory_keys, ("-", "--", ":")):
            pairs = [(s, v) for s, v in zip(snr, curves[key]) if v is not None and (v > 0 or metric not in LOG_METRICS)]
            if pairs:
                description = key[len(metric) + 1 :].replace("_", " ")
                ax.plot(*zip(*pairs), style, color=line.get_color(), label=f"{results['name']} ({description})")
    if metric in LOG_METRICS:
        ax.set_yscale("log")
    ax.set_xlabel(snr_axis_label(results_list[0]))
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    finally:
        plt.close(fig)
