import math

import pytest
import torch

from digisem.digitize import ScalarQuantizer, VectorQuantizer
from digisem.link import BSCLink, bits_to_int, int_to_bits


def test_bounded_range_is_minus_7_5_to_8_5_at_4_bits_and_minus_1_5_to_2_5_at_2_bits():
    q4, q2 = ScalarQuantizer(4), ScalarQuantizer(2)
    assert q4.bounds == (-7.5, 8.5) and q2.bounds == (-1.5, 2.5)
    x = torch.linspace(-6, 6, 1001, dtype=torch.float64)
    y = q4.bounded(x)
    assert bool(((y > -7.5) & (y < 8.5)).all())
    assert torch.allclose(y, torch.tanh(x) * 8 + 0.5)
    assert float(q4.bounded(torch.tensor(0.0))) == 0.5


def test_quantize_rounds_then_shifts_by_seven_at_4_bits():
    q = ScalarQuantizer(4)
    features = torch.tensor([8.4, -7.4, 0.0, 0.6, -0.6, 3.2, 8.49, -7.49])
    payload = q.quantize(features)
    assert payload.dtype == torch.int64
    assert payload.tolist() == [15, 0, 7, 8, 6, 10, 15, 0]
    assert q.dequantize(payload).tolist() == [8.0, -7.0, 0.0, 1.0, -1.0, 3.0, 8.0, -7.0]


def test_quantize_shifts_by_one_at_2_bits():
    q = ScalarQuantizer(2)
    assert q.quantize(torch.tensor([-1.4, -0.4, 0.6, 2.4])).tolist() == [0, 1, 2, 3]


def test_saturated_tanh_still_gives_a_valid_payload():
    q = ScalarQuantizer(4)
    payload = q.quantize(q.bounded(torch.tensor([-1e4, -30.0, 30.0, 1e4])))
    assert payload.tolist() == [0, 0, 15, 15]


def test_payload_covers_exactly_the_16_levels(generator):
    q = ScalarQuantizer(4)
    payload = q.quantize(q.bounded(3 * torch.randn(100000, generator=generator)))
    assert set(payload.unique().tolist()) == set(range(16))


def test_dequantize_of_quantize_is_rounding_and_survives_an_error_free_link(generator):
    q = ScalarQuantizer(4)
    features = q.bounded(2 * torch.randn(4, 8, 8, 8, generator=generator))
    payload = q.quantize(features)
    received = BSCLink(p=0.0)(payload, 4, generator=generator)
    assert torch.equal(q.dequantize(received), torch.round(features))


def test_dequantize_rejects_floats_and_out_of_range_values():
    q = ScalarQuantizer(4)
    with pytest.raises(TypeError):
        q.dequantize(torch.tensor([1.0]))
    with pytest.raises(ValueError, match=r"\[0, 15\]"):
        q.dequantize(torch.tensor([16]))


@pytest.mark.parametrize("num_bits", [0, 17, 2.0, True])
def test_invalid_bit_widths_raise(num_bits):
    with pytest.raises(ValueError):
        ScalarQuantizer(num_bits)


@pytest.mark.parametrize("alpha", [0.5, 0.2])
def test_relaxed_noise_has_standard_deviation_alpha(alpha, generator):
    q = ScalarQuantizer(4)
    n = 200000
    features = torch.full((2, n // 2), 3.0)
    noise = q.relaxed(features, alpha, generator) - features
    assert abs(float(noise.mean())) < 5 * alpha / math.sqrt(n)
    assert abs(float(noise.std()) - alpha) < 5 * alpha / math.sqrt(2 * n)


def test_relaxed_is_differentiable_and_reproducible():
    q = ScalarQuantizer(4)
    features = torch.zeros(3, 5, requires_grad=True)
    out = q.relaxed(features, 0.5, torch.Generator().manual_seed(7))
    out.sum().backward()
    assert torch.equal(features.grad, torch.ones(3, 5))
    assert torch.equal(out, q.relaxed(features, 0.5, torch.Generator().manual_seed(7)))
    assert torch.equal(q.relaxed(features, 0.0), features)


def test_vector_quantizer_picks_the_nearest_basis_vector_and_passes_gradients_straight_through(generator):

    quantizer = VectorQuantizer(codebook_size=16, dim=4, beta=0.25)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.randn(16, 4, generator=generator))
    features = torch.randn(3, 5, 4, generator=generator, requires_grad=True)
    quantized, indices, losses = quantizer(features)
    brute = torch.cdist(features.detach().reshape(-1, 4), quantizer.codebook.detach()).argmin(1).reshape(3, 5)
    assert torch.equal(indices, brute) and quantizer.bits_per_index == 4
    assert torch.allclose(quantized, quantizer.codebook.detach()[brute])
    assert torch.equal(bits_to_int(int_to_bits(indices, 4)), indices), "indices travel as 4-bit integers"
    upstream = torch.randn(3, 5, 4, generator=generator)
    (quantized * upstream).sum().backward()
    assert torch.allclose(features.grad, upstream), "straight-through: the decoder's gradient reaches z_e unchanged"
    assert quantizer.codebook.grad is None, "the reconstruction term gives the codebook no gradient"
    distance = (features.detach() - quantizer.codebook.detach()[brute]).pow(2).mean()
    assert float(losses["codebook"].detach()) == pytest.approx(float(distance)) and float(losses["commitment"].detach()) == pytest.approx(0.25 * float(distance))
    features.grad = None
    losses["codebook"].backward()
    assert features.grad is None and quantizer.codebook.grad.abs().sum() > 0, "codebook term trains only the basis vectors"


def test_vector_quantizer_orthogonality_term_and_errors():

    quantizer = VectorQuantizer(codebook_size=4, dim=4)
    with torch.no_grad():
        quantizer.codebook.copy_(3 * torch.eye(4))
    assert float(quantizer.orthogonality().detach()) == pytest.approx(0.0, abs=1e-7)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.ones(4, 4))
    assert float(quantizer.orthogonality().detach()) == pytest.approx(1.0), "identical directions: every off-diagonal cosine is 1"
    with pytest.raises(ValueError, match=r"features must be float \[\.\.\., 4\]"):
        quantizer(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 3\]"):
        quantizer.lookup(torch.tensor([4]))


@pytest.mark.parametrize(("size", "bits"), [(2, 1), (4, 2), (16, 4), (256, 8), (1024, 10)])
def test_vector_quantizer_bits_per_index_is_log2_of_a_power_of_two_codebook(size, bits):
    assert VectorQuantizer(codebook_size=size, dim=2).bits_per_index == bits


@pytest.mark.parametrize("size", [3, 100, 255])
def test_vector_quantizer_rejects_a_codebook_size_that_is_not_a_power_of_two(size):
    with pytest.raises(ValueError, match="not a power of two"):
        VectorQuantizer(codebook_size=size, dim=2)


# ---------------------------------------------------------------------------------------------------
# the digitizer protocol: payload_kind, bits_per_value, to_payload, from_payload


def test_every_digitizer_states_its_payload():
    from digisem.digitize import AnalogSymbols, LearnedConstellation

    assert (ScalarQuantizer(4).payload_kind, ScalarQuantizer(4).bits_per_value) == ("integers", 4)
    assert (ScalarQuantizer(2).payload_kind, ScalarQuantizer(2).bits_per_value) == ("integers", 2)
    assert (VectorQuantizer(256, 8).payload_kind, VectorQuantizer(256, 8).bits_per_value) == ("integers", 8)
    assert (VectorQuantizer(16, 8).bits_per_value) == 4
    for order, bits in ((2, 1), (4, 2), (16, 4), (64, 6), (256, 8)):
        assert (LearnedConstellation(order).payload_kind, LearnedConstellation(order).bits_per_value) == ("symbols", bits)
    assert (AnalogSymbols().payload_kind, AnalogSymbols().bits_per_value) == ("symbols", None)


def test_scalar_quantizer_protocol_is_quantize_and_dequantize(generator):
    q = ScalarQuantizer(4)
    features = q.bounded(3 * torch.randn(2, 8, 4, 4, generator=generator))
    payload = q.to_payload(features)
    assert torch.equal(payload, q.quantize(features)) and payload.dtype == torch.int64
    assert torch.equal(q.from_payload(payload), torch.round(features))
    assert q.from_payload(payload, torch.float64).dtype == torch.float64


def test_vector_quantizer_protocol_is_indices_and_lookup(generator):
    vq = VectorQuantizer(16, 4).eval()
    features = torch.randn(2, 6, 4, generator=generator)
    payload = vq.to_payload(features)
    assert payload.shape == (2, 6) and payload.dtype == torch.int64
    nearest = torch.cdist(features.reshape(-1, 4), vq.codebook.detach()).argmin(1).reshape(2, 6)
    assert torch.equal(payload, nearest)
    assert torch.equal(vq.from_payload(payload), vq.codebook[nearest])


def test_learned_constellation_protocol_returns_the_received_symbols_unchanged(generator):
    from digisem.digitize import LearnedConstellation

    learned = LearnedConstellation(16).eval()
    logits = torch.randn(2, 2 * 8, 4, generator=generator)
    symbols = learned.to_payload(logits)
    assert torch.equal(symbols, learned(logits)) and symbols.shape == (2, 8)
    received = symbols + 0.1
    assert learned.from_payload(received) is received


def test_analog_symbols_pair_values_into_unit_energy_symbols_and_back(generator):
    from digisem.digitize import AnalogSymbols

    analog = AnalogSymbols()
    features = torch.randn(3, 4, 2, 2, generator=generator) * torch.tensor([1.0, 10.0, 0.1])[:, None, None, None]
    symbols = analog.to_payload(features)
    assert symbols.shape == (3, 8) and symbols.dtype == torch.complex64
    assert torch.allclose(symbols.abs().pow(2).mean(1), torch.ones(3), atol=1e-5)
    scale = torch.sqrt(2 * features.pow(2).flatten(1).mean(1))
    assert torch.allclose(symbols[:, 0], torch.complex(features.flatten(1)[:, 0], features.flatten(1)[:, 1]) / scale, atol=1e-6)
    assert torch.allclose(analog.from_payload(symbols, features.shape), features / scale[:, None, None, None], atol=1e-6)
    grad_features = features.clone().requires_grad_()
    analog.to_payload(grad_features).real.sum().backward()
    assert grad_features.grad is not None and bool(torch.isfinite(grad_features.grad).all()), "differentiable"
    with pytest.raises(ValueError, match="even number of values"):
        analog.to_payload(torch.randn(2, 3))
    with pytest.raises(ValueError, match="all-zero"):
        analog.to_payload(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="float"):
        analog.to_payload(torch.ones(2, 4, dtype=torch.int64))
