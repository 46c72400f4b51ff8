"""Monte-Carlo bit error rate simulation of a :class:`~digisem.link.links.BitLink` over an SNR sweep."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .errors import InputError
from .links import BitLink


@dataclass
class BerPoint:
    """Counts at one SNR: ``bits`` sent, ``bit_errors``, ``blocks`` (rows of ``block_bits``) and ``block_errors``."""

    esn0_db: float
    bits: int = 0
    bit_errors: int = 0
    blocks: int = 0
    block_errors: int = 0

    @property
    def ber(self) -> float:
        """Bit error rate (errors / bits)."""
        return self.bit_errors / self.bits if self.bits else float("nan")

    @property
    def bler(self) -> float:
        """Block error rate: a block is in error if any of its bits is."""
        return self.block_errors / self.blocks if self.blocks else float("nan")


@dataclass
class BerSweep:
    """The points of a sweep, in order of ``esn0_db``."""

    points: list[BerPoint] = field(default_factory=list)


def simulate_ber(
    link: BitLink,
    esn0_db: list[float],
    *,
    max_bits: int = 10_000_000,
    target_errors: int = 1000,
    block_bits: int = 4096,
    blocks_per_batch: int = 256,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> BerSweep:
    """Simulate BER and BLER at each Es/N0 (dB per complex channel symbol).

    Each SNR point sends batches of ``[blocks_per_batch, block_bits]`` random bits until
    ``target_errors`` bit errors are counted or the bit budget is sent, whichever is first (as
    Sionna's ``sim_ber``). The budget is ``max_bits`` rounded up to whole blocks
    (:func:`bit_budget`); the last batch of a point is cut to fit it. With a channel code,
    ``block_bits`` should be a multiple of its ``k``. Returns a :class:`BerSweep`; shows a progress
    bar over the bit budget unless ``progress=False``.
    """
    if max_bits < 1 or target_errors < 1 or block_bits < 1 or blocks_per_batch < 1:
        raise InputError("max_bits, target_errors, block_bits and blocks_per_batch must all be >= 1")
    device = link.constellation.points.device
    budget = bit_budget(max_bits, block_bits)
    sweep = BerSweep()
    with tqdm(total=len(esn0_db) * budget, unit="bit", unit_scale=True, disable=not progress, desc="BER") as bar:
        for snr in esn0_db:
            point = BerPoint(float(snr))
            while point.bits < budget and point.bit_errors < target_errors:
                blocks = min(blocks_per_batch, (budget - point.bits) // block_bits)
                bits = torch.randint(0, 2, (blocks, block_bits), dtype=torch.uint8, device=device, generator=generator)
                wrong = link.transmit_bits(bits, float(snr), generator) != bits
                point.bits += bits.numel()
                point.bit_errors += int(wrong.sum())
                point.blocks += blocks
                point.block_errors += int(wrong.any(1).sum())
                bar.update(bits.numel())
                bar.set_postfix(esn0_db=f"{snr:g}", ber=f"{point.ber:.2e}")
            bar.update(budget - point.bits)
            sweep.points.append(point)
    return sweep


def bit_budget(max_bits: int, block_bits: int) -> int:
    """The bits :func:`simulate_ber` sends at most per SNR point: ``max_bits`` rounded up to a whole
    number of ``block_bits``-bit blocks (``bit_budget(200_000, 4096) == 200_704``)."""
    return -(-max_bits // block_bits) * block_bits
