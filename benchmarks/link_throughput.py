"""Link throughput: map + AWGN + demap, digisem's BitLink vs Sionna's blocks vs plain NumPy; LDPC decoding.

Prints a table and writes JSON ``{"rows": [{"implementation", "modulation", "demapping", "mbit_per_s", "busy", ...}]}``.
With ``--busy N`` the link table is measured twice: as the machine is, then while N busy-loop
processes that the script starts (and stops) hold cores; ``busy`` in each row says which, and the
meta records the load average before each table.
Usage: ``python benchmarks/link_throughput.py [--bits 4194304] [--repeats 5] [--busy N] [--out link_throughput.json] [--skip-ldpc]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from digisem.io import run_metadata, write_json
from digisem.link import BitLink, constellation
from digisem.link.constellation import gray_pam_labels

MODULATIONS = {"qpsk": 2, "16qam": 4, "64qam": 6}
SNR_DB = 10.0


def best_rate(step, num_bits: int, repeats: int) -> float:
    """Mbit/s of the fastest of ``repeats`` timed calls of ``step()`` (after one warm-up call)."""
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return num_bits / min(times) / 1e6


def digisem_step(modulation: str, demapping: str, bits: torch.Tensor):
    link = BitLink(modulation, "awgn", demapping=demapping)
    generator = torch.Generator().manual_seed(0)
    return lambda: link.transmit_bits(bits, SNR_DB, generator)


def sionna_step(modulation: str, demapping: str, bits: torch.Tensor):
    from sionna.phy.channel import AWGN
    from sionna.phy.mapping import Demapper, Mapper

    k = MODULATIONS[modulation]
    mapper = Mapper("qam", k)
    # max-log hard decisions are minimum-distance decisions, like digisem's "hard"
    demapper = Demapper("maxlog" if demapping == "hard" else "app", "qam", k, hard_out=demapping == "hard")
    channel = AWGN()
    no = 10 ** (-SNR_DB / 10)
    bits_float = bits.float()
    return lambda: demapper(channel(mapper(bits_float), no), no)


def numpy_step(modulation: str, bits: torch.Tensor):
    """Plain vectorised NumPy: labels by dot product, table look-up, complex noise, per-axis rounding."""
    k = MODULATIONS[modulation]
    points = constellation(modulation).points.numpy()
    bits_np = bits.numpy().reshape(-1, k)
    weights = (1 << np.arange(k - 1, -1, -1)).astype(np.uint8)
    levels = 1 << (k // 2)
    scale = constellation(modulation).level_scale
    axis_labels = gray_pam_labels(k // 2)
    grid_bits = np.stack([axis_labels[np.repeat(np.arange(levels), levels)], axis_labels[np.tile(np.arange(levels), levels)]], -1).reshape(-1, k)
    rng = np.random.default_rng(0)
    std = np.float32(np.sqrt(10 ** (-SNR_DB / 10) / 2))

    def step():
        x = points[bits_np @ weights]
        y = x + (rng.standard_normal((x.size, 2), dtype=np.float32) * std).view(np.complex64)[:, 0]
        j_re = np.clip(y.real * (0.5 / scale) + levels / 2, 0, levels - 0.5).astype(np.intp)
        j_im = np.clip(y.imag * (0.5 / scale) + levels / 2, 0, levels - 0.5).astype(np.intp)
        return grid_bits[j_re * levels + j_im].reshape(-1)

    return step


def spin() -> None:
    """Hold one core until terminated (the ``--busy`` load)."""
    while True:
        pass


def measure_link_rows(num_bits: int, repeats: int, busy: int = 0) -> list[dict]:
    """One row per (implementation, modulation, demapping), measured while ``busy`` spinning
    processes started here hold cores (0: the machine as it is)."""
    workers = [multiprocessing.Process(target=spin, daemon=True) for _ in range(busy)]
    for worker in workers:
        worker.start()
    try:
        return _measure(num_bits, repeats, busy)
    finally:
        for worker in workers:
            worker.terminate()
            worker.join()


def _measure(num_bits: int, repeats: int, busy: int) -> list[dict]:
    rows = []
    for modulation, k in MODULATIONS.items():
        n = num_bits - num_bits % k
        bits = torch.randint(0, 2, (1, n), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
        for demapping in ("hard", "llr"):
            method = "hard" if demapping == "hard" else "app"
            steps = {"digisem": digisem_step(modulation, method, bits), "sionna": sionna_step(modulation, demapping, bits)}
            if demapping == "hard":
                steps["numpy"] = numpy_step(modulation, bits)
            for implementation, step in steps.items():
                rate = best_rate(step, n, repeats)
                rows.append({"implementation": implementation, "modulation": modulation, "demapping": demapping, "mbit_per_s": round(rate, 2), "bits": n, "busy": busy})
                print(f"{implementation:8s} {modulation:6s} {demapping:5s} busy {busy} {rate:9.2f} Mbit/s", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bits", type=int, default=1 << 22, help="bits per measurement (default 2^22)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions; the fastest counts")
    parser.add_argument("--out", default="link_throughput.json", help="JSON output file")
    parser.add_argument("--skip-ldpc", action="store_true", help="leave out the LDPC decoder rows")
    parser.add_argument("--busy", type=int, default=0, help="also measure the link table while N busy-loop processes hold cores")
    args = parser.parse_args(argv)
    if args.busy < 0:
        parser.error(f"--busy must be >= 0, got {args.busy}")
    load = {"as_is": os.getloadavg()[0]}
    rows = measure_link_rows(args.bits, args.repeats)
    if args.busy:
        load[f"busy_{args.busy}"] = os.getloadavg()[0]
        rows += measure_link_rows(args.bits, args.repeats, args.busy)
    if not args.skip_ldpc:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from ldpc_throughput import measure_ldpc_rows

        rows += measure_ldpc_rows()
    print(f"\n{'implementation':14s} {'modulation':10s} {'demapping':10s} {'busy':>4s} {'Eb/N0':>6s} {'Mbit/s':>9s}")
    for row in rows:
        ebn0 = f"{row['ebn0_db']:g}" if "ebn0_db" in row else "-"
        print(f"{row['implementation']:14s} {row['modulation']:10s} {row['demapping']:10s} {row.get('busy', 0):>4d} {ebn0:>6s} {row['mbit_per_s']:9.2f}")
    out = write_json(args.out, {"rows": rows, "meta": run_metadata(None, "cpu", threads=torch.get_num_threads(), cpu=platform.processor() or platform.machine(), snr_db=SNR_DB,
                                                                   load_average_1min=load, omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"))})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
