"""Sweep throughput: images x SNR points per second of ``digisem.evaluate.sweep`` per zoo system,
with the sweep's encode-once path and (``--compare``) without it.

Prints a table and writes JSON ``{"rows": [{"model", "precision", "encode_once", "images", "snrs", "seconds",
"image_snrs_per_s", "psnr_mean"}], "meta": ...}``. The numbers of both paths must agree (checked).
Usage: ``python benchmarks/eval_throughput.py [--models ampsc-cifar10-4bit,deepjscc-cifar10-1_6]
[--data DIR|samples] [--limit 1000] [--snr 0:18:1] [--compare] [--precisions fp32 bf16] [--out eval_throughput.json]``.
"""

from __future__ import annotations

import argparse
import time

import torch

from digisem import zoo
from digisem.data import recipe_dataset
from digisem.evaluate import sweep
from digisem.io import run_metadata, write_json
from digisem.snr import parse_snr_range
from digisem.systems import FAMILIES


def time_sweep(model: str, dataset, snrs: list[float], encode_once: bool, batch_size: int, precision: str = "fp32") -> tuple[float, dict]:
    """Seconds of one sweep of zoo ``model`` over ``dataset`` at ``snrs`` on its recorded link (``precision``
    ``fp32`` or ``bf16`` autocast), and its curves."""
    system, metadata = zoo.load(model)
    family = FAMILIES[metadata["system"]]
    link = zoo.recorded_link(metadata) or family.default_link
    cls = type(system)
    declared = cls.encodes_once
    cls.encodes_once = declared and encode_once
    try:
        start = time.perf_counter()
        curves = sweep(system, link, snrs, dataset, snr_kind=family.snr_kind, batch_size=batch_size, progress=False, precision=precision)
        return time.perf_counter() - start, curves
    finally:
        cls.encodes_once = declared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ampsc-cifar10-4bit,deepjscc-cifar10-1_6,jcm-cifar10-64qam")
    parser.add_argument("--data", default="samples", help="'samples' (bundled images) or a data root with cifar10 (DIGISEM_DATA)")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--snr", default="0:18:1")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--compare", action="store_true", help="also time each sweep without encode-once")
    parser.add_argument("--precisions", nargs="+", choices=("fp32", "bf16"), default=["fp32"], help="one row per precision (default fp32)")
    parser.add_argument("--out", default="eval_throughput.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    dataset = recipe_dataset("samples" if args.data == "samples" else "cifar10", None if args.data == "samples" else args.data, "test", limit=args.limit if args.data != "samples" else None)
    snrs = parse_snr_range(args.snr)
    rows = []
    print(f"{'model':<28} {'precision':>9} {'encode once':>11} {'images':>7} {'SNRs':>5} {'seconds':>8} {'img-SNR/s':>10} {'PSNR':>7}")
    for model in args.models.split(","):
        for precision in args.precisions:
            results = {}
            for encode_once in ((True, False) if args.compare else (True,)):
                seconds, curves = time_sweep(model, dataset, snrs, encode_once, args.batch_size, precision)
                results[encode_once] = curves
                metric = "psnr" if "psnr" in curves else "accuracy"
                row = {"model": model, "precision": precision, "encode_once": encode_once, "images": len(dataset), "snrs": len(snrs), "seconds": round(seconds, 2),
                       "image_snrs_per_s": round(len(dataset) * len(snrs) / seconds, 1), f"{metric}_mean": round(sum(curves[metric]) / len(snrs), 3)}
                rows.append(row)
                print(f"{model:<28} {precision:>9} {str(encode_once):>11} {row['images']:>7} {row['snrs']:>5} {seconds:>8.1f} {row['image_snrs_per_s']:>10.1f} {row[f'{metric}_mean']:>7.2f}")
            if args.compare and results[True] != results[False]:
                raise SystemExit(f"{model}: the encode-once sweep gave other numbers than encoding at every SNR")
    write_json(args.out, {"rows": rows, "meta": run_metadata(0, "cpu", models=args.models, data=args.data, limit=args.limit, snr=args.snr,
                                                             threads=torch.get_num_threads())})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
