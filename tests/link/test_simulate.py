import pytest
import torch

from digisem.link import BitLink, ber_awgn
from digisem.link.simulate import simulate_ber


def test_simulate_stops_on_errors_or_budget_and_counts_blocks():
    link = BitLink("qpsk", "awgn")
    sweep = simulate_ber(link, [0.0, 30.0], max_bits=200_000, target_errors=500, block_bits=1000, blocks_per_batch=10, generator=torch.Generator().manual_seed(0), progress=False)
    low, high = sweep.points
    # at 0 dB (BER 0.079) 500 errors come within the first batch of 10,000 bits
    assert low.bits == 10_000 and low.bit_errors >= 500
    assert low.ber == pytest.approx(float(ber_awgn("qpsk", 0.0)), rel=0.15)
    assert low.blocks == 10 and low.block_errors == 10
    # at 30 dB there are no errors: the whole budget is spent
    assert high.bits == 200_000 and high.bit_errors == 0 and high.bler == 0.0


def test_simulate_rejects_bad_budget():
    with pytest.raises(ValueError, match="must all be >= 1"):
        simulate_ber(BitLink("qpsk"), [0.0], max_bits=0, progress=False)
