"""LDPC decoding throughput: digisem's fast 5G NR decoder vs Sionna's LDPC5GDecoder, same LLRs.

BPSK over real AWGN at each Eb/N0 (channel LLR ``-2y / sigma^2``), rate-1/2 5G NR code, flooding
BP. Throughput counts decoded information bits per second (after a warm-up call, default threads);
the BER of each decoder is measured on the same LLRs.

Prints a table and writes JSON ``{"rows": [...], "meta": {...}}``.
Usage: ``python benchmarks/ldpc_throughput.py [--batch 1000] [--ebn0 1.75 4.0] [--out ldpc_throughput.json]``.
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from fractions import Fraction

import torch

from digisem.io import run_metadata, write_json
from digisem.link.ldpc import LDPC5GCode

EBN0_DB = (1.75, 4.0)  # waterfall (BER ~1e-3, ~10 iterations on average) and high SNR


def bpsk_awgn_llr(codewords: torch.Tensor, ebn0_db: float, rate: float, generator: torch.Generator) -> torch.Tensor:
    """LLR ``ln P(b=1|y) / P(b=0|y) = -2y / sigma^2`` of BPSK ``x = 1 - 2b`` over real AWGN at Eb/N0 (dB)."""
    sigma2 = 1.0 / (2.0 * rate * 10 ** (ebn0_db / 10))
    return -2.0 * (1.0 - 2.0 * codewords + math.sqrt(sigma2) * torch.randn(codewords.shape, generator=generator)) / sigma2


def time_decode(code: LDPC5GCode, llr: torch.Tensor, repeats: int) -> tuple[float, torch.Tensor]:
    """Fastest of ``repeats`` timed ``decode(llr)`` calls after a warm-up call on a few codewords."""
    code.decode(llr[:8])
    best, decoded = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        decoded = code.decode(llr)
        best = min(best, time.perf_counter() - start)
    return best, decoded


def measure_ldpc_rows(k: int = 512, n: int = 1024, num_iter: int = 20, batch: int = 1000, ebn0_db=EBN0_DB, repeats: int = 3, sionna_repeats: int = 1) -> list[dict]:
    """One row per (decoder, Eb/N0): information Mbit/s and BER of digisem's and Sionna's decoders.

    Both decoders get the same LLRs. Sionna's decoder is slow, so it is timed ``sionna_repeats`` times.
    """
    generator = torch.Generator().manual_seed(0)
    decoders = {"digisem": (LDPC5GCode(k, n, num_iter, "fast"), repeats), "sionna": (LDPC5GCode(k, n, num_iter, "sionna"), sionna_repeats)}
    rate = Fraction(k, n)
    spec = f"ldpc-{rate.numerator}/{rate.denominator}"
    rows = []
    for snr in ebn0_db:
        bits = torch.randint(0, 2, (batch, k), generator=generator).float()
        llr = bpsk_awgn_llr(decoders["digisem"][0].encode(bits), snr, k / n, generator)
        for implementation, (code, count) in decoders.items():
            seconds, decoded = time_decode(code, llr, count)
            errors = decoded != bits
            row = {
                "implementation": implementation,
                "modulation": spec,
                "demapping": f"bp-{num_iter}it",
                "mbit_per_s": round(batch * k / seconds / 1e6, 3),
                "batch": batch,
                "ebn0_db": snr,
                "ber": errors.float().mean().item(),
                "bler": errors.any(1).float().mean().item(),
            }
            rows.append(row)
            print(f"{implementation:8s} {spec:9s} Eb/N0 {snr:5.2f} dB {row['mbit_per_s']:9.3f} Mbit/s  BER {row['ber']:.2e}  BLER {row['bler']:.2e}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    """Measure, print a table and write the JSON file atomically."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=512, help="information bits per codeword")
    parser.add_argument("--n", type=int, default=1024, help="coded bits per codeword")
    parser.add_argument("--num-iter", type=int, default=20, help="BP iterations")
    parser.add_argument("--batch", type=int, default=1000, help="codewords per decode call")
    parser.add_argument("--ebn0", type=float, nargs="+", default=list(EBN0_DB), help="Eb/N0 points in dB")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of digisem's decoder; the fastest counts")
    parser.add_argument("--out", default="ldpc_throughput.json", help="JSON output file")
    args = parser.parse_args(argv)
    rows = measure_ldpc_rows(args.k, args.n, args.num_iter, args.batch, args.ebn0, args.repeats)
    print(f"\n{'implementation':14s} {'code':9s} {'Eb/N0 dB':>8s} {'Mbit/s':>9s} {'BER':>9s} {'BLER':>9s}")
    for row in rows:
        print(f"{row['implementation']:14s} {row['modulation']:9s} {row['ebn0_db']:8.2f} {row['mbit_per_s']:9.3f} {row['ber']:9.2e} {row['bler']:9.2e}")
    out = write_json(args.out, {"rows": rows, "meta": run_metadata(None, "cpu", threads=torch.get_num_threads(), cpu=platform.processor() or platform.machine(), channel="bpsk-awgn")})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
