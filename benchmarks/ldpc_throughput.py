"""LDPC decoding throughput: digisem's numba and torch ("fast") 5G NR decoders and Sionna's LDPC5GDecoder, same LLRs.

BPSK over real AWGN at each Eb/N0 (channel LLR ``-2y / sigma^2``), rate-1/2 5G NR code, flooding
BP. Throughput counts decoded information bits per second (wall clock, ``--threads`` torch threads,
which the numba decoder also uses). After one warm-up call per decoder (the numba kernel compiles or
loads from numba's cache there), the decoders are timed in turn, A B C A B C ..., so that a machine
whose speed drifts (other jobs) slows all of them alike; the fastest call of each counts, and the
speed-up of the numba decoder over the fast one is the ratio of those. The BER of each decoder is
measured on the same LLRs, and the numba rows say whether their bits equal the fast decoder's.

Prints a table and writes JSON ``{"rows": [...], "meta": {...}}``; ``meta`` has the 1-minute load
average before and after and ``--label`` (e.g. what else the machine was running).
Usage: ``python benchmarks/ldpc_throughput.py [--batch 1000] [--ebn0 1.75 4.0] [--decoders numba fast sionna]
[--threads 2] [--label TEXT] [--out ldpc_throughput.json]``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from fractions import Fraction

import torch

from digisem.io import run_metadata, write_json
from digisem.link.ldpc import DEFAULT_DECODER, LDPC5GCode

EBN0_DB = (1.75, 4.0)  # waterfall (BER ~1e-3, ~10 iterations on average) and high SNR
DECODERS = ("numba", "fast", "sionna") if DEFAULT_DECODER == "numba" else ("fast", "sionna")
LABELS = {"numba": "digisem-numba", "fast": "digisem-fast", "sionna": "sionna"}


def bpsk_awgn_llr(codewords: torch.Tensor, ebn0_db: float, rate: float, generator: torch.Generator) -> torch.Tensor:
    """LLR ``ln P(b=1|y) / P(b=0|y) = -2y / sigma^2`` of BPSK ``x = 1 - 2b`` over real AWGN at Eb/N0 (dB)."""
    sigma2 = 1.0 / (2.0 * rate * 10 ** (ebn0_db / 10))
    return -2.0 * (1.0 - 2.0 * codewords + math.sqrt(sigma2) * torch.randn(codewords.shape, generator=generator)) / sigma2


def time_decoders(codes: dict[str, tuple[LDPC5GCode, int]], llr: torch.Tensor) -> tuple[dict[str, list[float]], dict[str, torch.Tensor]]:
    """Seconds of each timed ``decode(llr)`` call per decoder (``count`` calls, in turn with the others), and its output."""
    for code, _ in codes.values():
        code.decode(llr[:8])
    seconds: dict[str, list[float]] = {name: [] for name in codes}
    outputs: dict[str, torch.Tensor] = {}
    for repeat in range(max(count for _, count in codes.values())):
        for name, (code, count) in codes.items():
            if repeat < count:
                start = time.perf_counter()
                outputs[name] = code.decode(llr)
                seconds[name].append(time.perf_counter() - start)
    return seconds, outputs


def measure_ldpc_rows(k: int = 512, n: int = 1024, num_iter: int = 20, batch: int = 1000, ebn0_db=EBN0_DB, repeats: int = 3, sionna_repeats: int = 1,
                      decoders=DECODERS) -> list[dict]:
    """One row per (decoder, Eb/N0): information Mbit/s (fastest of ``repeats`` calls) and BER.

    All decoders get the same LLRs. Sionna's decoder is slow, so it is timed ``sionna_repeats`` times.
    """
    generator = torch.Generator().manual_seed(0)
    codes = {name: (LDPC5GCode(k, n, num_iter, name), sionna_repeats if name == "sionna" else repeats) for name in decoders}
    rate = Fraction(k, n)
    spec = f"ldpc-{rate.numerator}/{rate.denominator}"
    rows = []
    for snr in ebn0_db:
        bits = torch.randint(0, 2, (batch, k), generator=generator).float()
        llr = bpsk_awgn_llr(next(iter(codes.values()))[0].encode(bits), snr, k / n, generator)
        times, outputs = time_decoders(codes, llr)
        for name, seconds in times.items():
            errors = outputs[name] != bits
            row = {
                "implementation": LABELS[name],
                "modulation": spec,
                "demapping": f"bp-{num_iter}it",
                "mbit_per_s": round(batch * k / min(seconds) / 1e6, 3),
                "seconds": [round(s, 4) for s in seconds],
                "batch": batch,
                "ebn0_db": snr,
                "ber": errors.float().mean().item(),
                "bler": errors.any(1).float().mean().item(),
            }
            if name == "numba" and "fast" in times:
                row["speedup_vs_fast"] = round(min(times["fast"]) / min(seconds), 2)
                row["same_bits_as_fast"] = torch.equal(outputs[name], outputs["fast"])
            rows.append(row)
            print(f"{row['implementation']:13s} {spec:9s} Eb/N0 {snr:5.2f} dB {row['mbit_per_s']:9.3f} Mbit/s  BER {row['ber']:.2e}  BLER {row['bler']:.2e}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    """Measure, print a table and write the JSON file atomically."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=512, help="information bits per codeword")
    parser.add_argument("--n", type=int, default=1024, help="coded bits per codeword")
    parser.add_argument("--num-iter", type=int, default=20, help="BP iterations")
    parser.add_argument("--batch", type=int, default=1000, help="codewords per decode call")
    parser.add_argument("--ebn0", type=float, nargs="+", default=list(EBN0_DB), help="Eb/N0 points in dB")
    parser.add_argument("--decoders", nargs="+", choices=DECODERS, default=list(DECODERS), help="decoders to time (default: all available)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of digisem's decoders, in turn; the fastest counts")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch (and numba decoder) threads")
    parser.add_argument("--label", default="", help="a note on the machine's state for the JSON meta, e.g. 'two trainings running on the 2 cores'")
    parser.add_argument("--out", default="ldpc_throughput.json", help="JSON output file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    rows = measure_ldpc_rows(args.k, args.n, args.num_iter, args.batch, args.ebn0, args.repeats, decoders=args.decoders)
    print(f"\n{'implementation':14s} {'code':9s} {'Eb/N0 dB':>8s} {'Mbit/s':>9s} {'BER':>9s} {'BLER':>9s} {'vs fast':>7s}")
    for row in rows:
        speedup = f"{row['speedup_vs_fast']:.2f}x" if "speedup_vs_fast" in row else "-"
        print(f"{row['implementation']:14s} {row['modulation']:9s} {row['ebn0_db']:8.2f} {row['mbit_per_s']:9.3f} {row['ber']:9.2e} {row['bler']:9.2e} {speedup:>7s}")
    meta = run_metadata(None, "cpu", threads=torch.get_num_threads(), cpu=platform.processor() or platform.machine(), channel="bpsk-awgn", label=args.label,
                        load_average_1min={"before": load_before, "after": os.getloadavg()[0]}, command=" ".join(["python", *sys.argv]))
    out = write_json(args.out, {"rows": rows, "meta": meta})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
