import itertools

import numpy as np
import pytest
import torch

from digisem.link import Constellation, constellation

NAMED = ["bpsk", "qpsk", "16qam", "64qam", "256qam", "8psk", "16psk"]
SIONNA_QAM = [("qam", 2, "qpsk"), ("qam", 4, "16qam"), ("qam", 6, "64qam"), ("qam", 8, "256qam"), ("pam", 1, "bpsk")]


@pytest.mark.parametrize("name", NAMED)
def test_unit_energy_and_distinct_points(name):
    c = constellation(name)
    assert c.points.abs().pow(2).mean().item() == pytest.approx(1.0, abs=1e-6)
    dist = (c.points.unsqueeze(0) - c.points.unsqueeze(1)).abs() + torch.eye(c.num_points)
    assert dist.min() > 1e-3


@pytest.mark.parametrize("name", NAMED)
def test_round_trip_at_infinite_snr(name, generator):
    c = constellation(name)
    bits = torch.randint(0, 2, (3, 60 * c.bits_per_symbol), dtype=torch.uint8, generator=generator)
    x = c.map(bits)
    assert x.shape == (3, 60) and x.dtype == torch.complex64
    assert torch.equal(c.demap_hard(x), bits)
    for method in ("app", "maxlog"):
        assert torch.equal((c.demap_llr(x, 1e-4, method) > 0).to(torch.uint8), bits)


@pytest.mark.parametrize("name", NAMED)
def test_gray_nearest_neighbours_differ_in_one_bit(name):
    c = constellation(name)
    dist = (c.points.unsqueeze(0) - c.points.unsqueeze(1)).abs()
    dist.fill_diagonal_(float("inf"))
    d_min = dist.min()
    for i, j in itertools.combinations(range(c.num_points), 2):
        if dist[i, j] < d_min * 1.001:
            assert bin(i ^ j).count("1") == 1, (name, i, j)


def test_3gpp_16qam_labels():
    # TS 38.211 5.1.4: d = [(1-2b0)(2-(1-2b2)) + j(1-2b1)(2-(1-2b3))] / sqrt(10)
    c = constellation("16qam")
    for label in range(16):
        b = [(label >> (3 - t)) & 1 for t in range(4)]
        expected = ((1 - 2 * b[0]) * (2 - (1 - 2 * b[2])) + 1j * (1 - 2 * b[1]) * (2 - (1 - 2 * b[3]))) / np.sqrt(10)
        assert complex(c.points[label]) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("kind,bits_per_symbol,name", SIONNA_QAM)
def test_agrees_with_sionna_bit_for_bit(kind, bits_per_symbol, name, generator):
    from sionna.phy.mapping import Demapper, Mapper

    c = constellation(name)
    bits = torch.randint(0, 2, (4, 200 * bits_per_symbol), generator=generator)
    x_sionna = Mapper(kind, bits_per_symbol)(bits.float())
    assert torch.equal(c.map(bits), x_sionna.to(torch.complex64))
    noise = torch.randn(x_sionna.shape, dtype=torch.complex64, generator=generator) * 0.3
    y = x_sionna.to(torch.complex64) + noise
    no = 0.09
    # max-log hard decisions are the bits of the nearest point (minimum distance), as ours.
    hard_sionna = Demapper("maxlog", kind, bits_per_symbol, hard_out=True)(y, no)
    assert torch.equal(c.demap_hard(y), hard_sionna.to(torch.uint8))
    for method in ("app", "maxlog"):
        llr_sionna = Demapper(method, kind, bits_per_symbol)(y, no)
        torch.testing.assert_close(c.demap_llr(y, no, method), llr_sionna.float(), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("modulation", ["bpsk", "qpsk", "64qam"])
def test_per_axis_llr_equals_generic_m_point_llr(modulation, generator):
    """The per-axis demappers (sign tests and closed-form LLRs for one bit per axis) against the
    M-point minimum-distance and log-sum-exp demapper, ties on an axis included."""
    fast = constellation(modulation)
    generic = Constellation(fast.points, normalize=False)
    y = torch.randn(2, 300, dtype=torch.complex64, generator=generator)
    y[0, :4] = torch.tensor([0, 1j, 0.5, -0.5j])
    noise_var = torch.rand(2, 300, generator=generator) + 0.05
    for method in ("app", "maxlog"):
        torch.testing.assert_close(fast.demap_llr(y, noise_var, method), generic.demap_llr(y, noise_var, method), rtol=1e-4, atol=1e-4)
    assert torch.equal(fast.demap_hard(y), generic.demap_hard(y))


def test_psk_hard_equals_minimum_distance(generator):
    c = constellation("8psk")
    generic = Constellation(c.points, normalize=False)
    y = torch.randn(5, 400, dtype=torch.complex64, generator=generator)
    assert torch.equal(c.demap_hard(y), generic.demap_hard(y))


def test_custom_constellation_is_normalized():
    c = Constellation(torch.tensor([3 + 0j, -3 + 0j]))
    assert c.points.abs().tolist() == pytest.approx([1.0, 1.0])


def test_bad_input_errors():
    c = constellation("16qam")
    with pytest.raises(ValueError, match="unknown modulation 'qam17'"):
        constellation("qam17")
    with pytest.raises(ValueError, match=r"\(6\) is not a multiple of the 4 bits per symbol"):
        c.map(torch.zeros(1, 6, dtype=torch.uint8))
    with pytest.raises(ValueError, match="only 0 and 1"):
        c.map(torch.full((1, 4), 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="non-empty"):
        c.map(torch.zeros(0, 4))
    with pytest.raises(ValueError, match="NaN or inf"):
        c.demap_hard(torch.tensor([[complex("nan")]], dtype=torch.complex64))
    with pytest.raises(ValueError, match="NaN or inf"):
        c.demap_llr(torch.tensor([[complex(float("inf"), 0)]], dtype=torch.complex64), 1.0)
    with pytest.raises(TypeError, match="complex"):
        c.demap_hard(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="empty"):
        c.demap_hard(torch.zeros(0, 4, dtype=torch.complex64))
    with pytest.raises(ValueError, match="noise_var"):
        c.demap_llr(torch.zeros(1, 4, dtype=torch.complex64), 0.0)
    with pytest.raises(ValueError, match="demapping method"):
        c.demap_llr(torch.zeros(1, 4, dtype=torch.complex64), 1.0, "exact")
    with pytest.raises(ValueError, match="power of two"):
        Constellation(torch.tensor([1, 1j, -1]))
