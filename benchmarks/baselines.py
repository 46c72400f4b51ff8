"""The classical reference curves of docs/results/baselines.md: ``digisem baseline`` on CIFAR-10
(1,000 test images) and Kodak24 (256x256 center crops) at the channel-use budgets of the zoo's
systems, each into ``docs/results/baselines/<name>/`` (results.json with its wall time, psnr.png).

Run: ``OMP_NUM_THREADS=1 python benchmarks/baselines.py [--data DIR] [--only NAME ...]``; a run whose
results.json exists is skipped (delete it to measure again).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from digisem.cli import main

OUT = Path("docs/results/baselines")
SNRS = "-6:24:3"
ANCHOR_SNRS = "7,10"
"""The SNRs of the published BPG + 5G LDPC anchor (CIFAR-10, ratio 1/6, AWGN: 0, 7, 10, 15 dB) that
the -6:24:3 grid lacks (same seed, so 0 and 15 dB are the grid's own points)."""
RUNS = [
    ("cifar10-512-webp", ["webp", "--channel-uses", "512"]),
    ("cifar10-512-jpeg2000", ["jpeg2000", "--channel-uses", "512"]),
    ("cifar10-512-avif", ["avif", "--channel-uses", "512"]),
    ("anchor-cifar10-512-webp", ["webp", "--channel-uses", "512", "--snr", ANCHOR_SNRS]),
    ("anchor-cifar10-512-avif", ["avif", "--channel-uses", "512", "--snr", ANCHOR_SNRS]),
    ("anchor-cifar10-512-jpeg2000", ["jpeg2000", "--channel-uses", "512", "--snr", ANCHOR_SNRS]),
    ("anchor-cifar10-512-jpeg", ["jpeg", "--channel-uses", "512", "--snr", "0,7,10,15"]),
    ("cifar10-128-webp", ["webp", "--channel-uses", "128"]),
    ("kodak24-ratio6-webp", ["webp", "--ratio", "1/6", "--dataset", "kodak24"]),
    ("cifar10-256-webp", ["webp", "--channel-uses", "256"]),
    ("cifar10-128-jpeg2000", ["jpeg2000", "--channel-uses", "128"]),
    ("kodak24-ratio24-webp", ["webp", "--ratio", "1/24", "--dataset", "kodak24"]),
    ("cifar10-128-avif", ["avif", "--channel-uses", "128"]),
    ("cifar10-256-avif", ["avif", "--channel-uses", "256"]),
    ("cifar10-128-jpeg", ["jpeg", "--channel-uses", "128"]),
    ("kodak24-ratio12-webp", ["webp", "--ratio", "1/12", "--dataset", "kodak24"]),
    ("cifar10-256-jpeg2000", ["jpeg2000", "--channel-uses", "256"]),
    ("cifar10-512-jpeg", ["jpeg", "--channel-uses", "512"]),
]
"""(folder, arguments): 512 channel uses = AMP-SC 4-bit and DeepJSCC 1/6; 128 = JCM (n = 128); 256 =
the robust masked VQ-VAE as measured (LDPC k = 512 blocks); Kodak at the same bandwidth ratios."""


def run(data: str | None, only: list[str] | None) -> None:
    """Run every entry of :data:`RUNS` (or those named in ``only``) that has no results.json yet."""
    for name, arguments in RUNS:
        if (only and name not in only) or (OUT / name / "results.json").exists():
            continue
        command = arguments + (["--snr", SNRS] if "--snr" not in arguments else []) + ["--out", str(OUT / name), "--quiet"]
        command += ["--limit", "1000"] if "kodak24" not in arguments else []
        command += ["--data", data] if data else []
        print(f"digisem baseline {' '.join(command)}", flush=True)
        started = time.perf_counter()
        status = main(["baseline", *command])
        print(f"{name}: exit {status}, {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="data root (default $DIGISEM_DATA)")
    parser.add_argument("--only", nargs="*", default=None, help="run only these entries of RUNS")
    options = parser.parse_args()
    run(options.data, options.only)
