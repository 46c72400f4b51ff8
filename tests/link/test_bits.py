import pytest
import torch

from digisem.link import bits_to_int, gray_decode, gray_encode, int_to_bits


def test_int_to_bits_follows_ampsc_eq2_msb_first():
    bits = int_to_bits(torch.tensor([5, 0, 15, 8]), 4)
    assert bits.tolist() == [[0, 1, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
    assert bits.dtype == torch.uint8
    # eq. (2b): d_i = floor(s / 2^i) mod 2, with d_{b-1} first
    s = 11
    assert int_to_bits(torch.tensor(s), 4).tolist() == [(s // 2**i) % 2 for i in range(3, -1, -1)]


@pytest.mark.parametrize("num_bits", [1, 2, 3, 4, 5, 8, 12])
def test_round_trip_every_value(num_bits):
    values = torch.arange(1 << num_bits).reshape(1, -1)
    assert torch.equal(bits_to_int(int_to_bits(values, num_bits)), values)


def test_bits_to_int_eq5_with_float_bits():
    assert bits_to_int(torch.tensor([1.0, 0.0, 1.0, 1.0])).item() == 8 + 2 + 1


def test_gray_neighbours_differ_in_one_bit_and_decode_inverts():
    n = torch.arange(1 << 10)
    g = gray_encode(n)
    diff = g[1:] ^ g[:-1]
    assert bool(((diff & (diff - 1)) == 0).all()) and bool((diff > 0).all())
    assert torch.equal(gray_decode(g), n)
    assert torch.unique(g).numel() == n.numel()


def test_int_to_bits_rejects_out_of_range_and_float():
    with pytest.raises(ValueError, match=r"\[0, 15\] for 4 bits"):
        int_to_bits(torch.tensor([16]), 4)
    with pytest.raises(ValueError, match="for 4 bits"):
        int_to_bits(torch.tensor([-1]), 4)
    with pytest.raises(TypeError, match="integer dtype"):
        int_to_bits(torch.tensor([1.0]), 4)
    with pytest.raises(ValueError, match="num_bits"):
        int_to_bits(torch.tensor([1]), 0)


def test_bits_to_int_rejects_non_binary():
    with pytest.raises(ValueError, match="only 0 and 1"):
        bits_to_int(torch.tensor([0, 2, 1]))
