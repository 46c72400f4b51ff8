"""Plots: any metric of results JSON files (the schema of DESIGN.md) against SNR, and reconstruction grids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from .io import atomic_write
from .link.errors import InputError

METRIC_LABELS = {"ber": "bit error rate", "bler": "block error rate", "psnr": "PSNR (dB)", "ssim": "SSIM", "ms_ssim": "MS-SSIM", "accuracy": "accuracy"}
LOG_METRICS = ("ber", "bler")


def snr_axis_label(results: dict[str, Any]) -> str:
    """Axis label for the SNR of a results file, e.g. 'Eb/N0 (dB)'."""
    kind = results.get("meta", {}).get("snr_kind", "esn0")
    return {"ebn0": "Eb/N0 (dB)", "esn0": "Es/N0 (dB)"}.get(kind, "SNR (dB)")


def plot_metric(results_list: list[dict[str, Any]], metric: str, path: str | Path, title: str | None = None, xlabel: str | None = None) -> Path:
    """Plot ``metric`` against ``results.snr_db`` for every results dict that has it, onto one PNG.

    BER-like metrics use a log axis; points with no errors counted are drawn as triangles below
    the lowest measured value (labelled so), never dropped; keys ``<metric>_theory``,
    ``<metric>_<words>_theory`` (e.g. ``ber_uncoded_theory``) and ``<metric>_<words>_bound`` (the
    classical reference's ``psnr_capacity_bound``, dashed) are drawn as lines of the same colour, the
    simulation as markers (joined when there is no theory). ``xlabel`` replaces the SNR axis label
    of the first results file; more than three curves put the legend beside the axes.
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    error_free: dict[str, list[float]] = {}
    colours: dict[str, str] = {}
    for results in results_list:
        curves = results["results"]
        if metric not in curves:
            continue
        snr = curves["snr_db"]
        values = curves[metric]
        if metric in LOG_METRICS:
            shown = [(s, v) for s, v in zip(snr, values) if v is not None and v > 0]
            error_free[results["name"]] = [s for s, v in zip(snr, values) if v == 0]
        else:
            shown = [(s, v) for s, v in zip(snr, values) if v is not None]
        theory_keys = [key for key in curves if key.startswith(f"{metric}_") and key.endswith("theory")]
        bound_keys = [key for key in curves if key.startswith(f"{metric}_") and key.endswith("bound")]
        if not shown and not error_free.get(results["name"]):
            continue
        line = ax.plot(*zip(*shown) if shown else ([], []), "o" if theory_keys else "o-", label=results["name"])[0]
        colours[results["name"]] = line.get_color()
        for key, style in [*zip(theory_keys, ("-", "--", ":")), *zip(bound_keys, ("--", ":"))]:
            pairs = [(s, v) for s, v in zip(snr, curves[key]) if v is not None and (v > 0 or metric not in LOG_METRICS)]
            if pairs:
                description = key[len(metric) + 1 :].replace("_", " ")
                ax.plot(*zip(*pairs), style, color=line.get_color(), label=f"{results['name']} ({description})")
    if metric in LOG_METRICS:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel or snr_axis_label(results_list[0]))
    if any(error_free.values()):
        positive = [v for line in ax.get_lines() for v in line.get_ydata() if v > 0]
        floor = min(positive) / 3 if positive else 1e-6
        for name, snrs in error_free.items():
            if snrs:
                ax.plot(snrs, [floor] * len(snrs), "v", color=colours[name], label=f"{name}: no errors counted")
    if len(ax.get_lines()) > 3:
        fig.set_size_inches(9.6, 4.8)
        ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _finish(fig, ax, metric, path, title)


def _finish(fig: Any, ax: Any, metric: str, path: str | Path, title: str | None) -> Path:
    """Label, grid and legend ``ax``, then write ``fig`` to ``path`` (PNG, atomically)."""
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend() is None:
        ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    finally:
        plt.close(fig)


def plot_reference(results: dict[str, Any], path: str | Path, metric: str = "psnr", title: str | None = None) -> Path:
    """The classical reference of :func:`digisem.evaluate.reference_sweep` (a results dict): every
    MCS's ``metric`` against Es/N0 (thin lines), the best-MCS envelope (markers) and the codec at
    capacity (dashed), onto one PNG."""
    curves = results["results"]
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    for index, (mcs, values) in enumerate(curves.get("by_mcs", {}).items()):
        ax.plot(curves["snr_db"], values[metric], "-", lw=0.8, alpha=0.6, color=plt.cm.viridis(index / max(1, len(curves["by_mcs"]) - 1)), label=mcs)
    ax.plot(curves["snr_db"], curves[metric], "ko-", lw=1.8, label=f"{results['name']}")
    if f"{metric}_capacity_bound" in curves:
        ax.plot(curves["snr_db"], curves[f"{metric}_capacity_bound"], "k--", lw=1.5, label="codec + capacity (no errors)")
    ax.set_xlabel(snr_axis_label(results))
    ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _finish(fig, ax, metric, path, title)


def reconstruction_grid(rows: list[tuple[str, torch.Tensor]], path: str | Path, title: str | None = None) -> Path:
    """Images side by side, one labelled row per entry (e.g. "original", "AMP-SC 3 dB", ...).

    ``rows`` : list of ``(label, images [N, 3, H, W] in [0, 1])`` with the same N, H, W in every row.
    """
    count = rows[0][1].shape[0]
    fig, axes = plt.subplots(len(rows), 1, figsize=(1.1 * count + 1.6, 1.25 * len(rows) + (0.4 if title else 0.1)), squeeze=False)
    for axis, (label, images) in zip(axes[:, 0], rows):
        if images.shape[0] != count:
            raise InputError(f"row {label!r} has {images.shape[0]} images, expected {count}")
        padded = torch.nn.functional.pad(images.detach().clamp(0, 1).cpu(), (1, 1, 1, 1), value=1.0)
        strip = torch.cat(list(padded), dim=2).permute(1, 2, 0).numpy()
        axis.imshow(strip, interpolation="nearest")
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_ylabel(label, rotation=0, ha="right", va="center", fontsize="small")
    if title:
        fig.suptitle(title, fontsize="medium")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_size_inches()[1]) if title else None)
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
    finally:
        plt.close(fig)
