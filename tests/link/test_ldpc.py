"""5G NR LDPC: round trips, coding gain, agreement with Sionna's decoder and of the numba decoder with the
torch one, parity checks, bad input."""

import math

import numpy as np
import pytest
import torch
from conftest import assert_rate_within_binomial
from scipy.stats import norm
from sionna.phy.fec.ldpc import LDPC5GEncoder

from digisem.link import ldpc
from digisem.link.ldpc import DEFAULT_DECODER, LDPC5GCode

# (k, n): BG2 rate 1/2, BG2 rate 1/3 with partial filler columns, BG2 rate 2/3, BG1 rate 0.92
# with punctured core parity bits.
CODES = [(512, 1024), (100, 300), (512, 768), (512, 555)]
HAS_NUMBA = DEFAULT_DECODER == "numba"
needs_numba = pytest.mark.skipif(not HAS_NUMBA, reason="numba is not installed (pip install 'digisem[fast]'): no numba decoder to compare")
DECODERS = ["fast", "sionna", pytest.param("numba", marks=needs_numba)]


def bpsk_awgn_llr(codewords: torch.Tensor, ebn0_db: float, rate: float, generator: torch.Generator) -> torch.Tensor:
    """LLR ln P(1)/P(0) of BPSK x = 1 - 2b over real AWGN at Eb/N0 (dB): -2y / sigma^2."""
    sigma2 = 1.0 / (2.0 * rate * 10 ** (ebn0_db / 10))
    y = 1.0 - 2.0 * codewords + math.sqrt(sigma2) * torch.randn(codewords.shape, generator=generator)
    return -2.0 * y / sigma2


def random_bits(shape, generator):
    return torch.randint(0, 2, shape, generator=generator).float()


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Sionna's decoder runs ~100 small ops per iteration: on a busy machine OpenMP waits make it 3x
    slower with 2 threads than with 1 (and it gains nothing from 2 on an idle one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def codes():
    return {(k, n, dec): LDPC5GCode(k, n, decoder=dec) for k, n in CODES for dec in ("fast", "sionna") + (("numba",) if HAS_NUMBA else ())}


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("k,n", CODES)
def test_noise_free_round_trip(codes, k, n, decoder, generator):
    code = codes[(k, n, decoder)]
    bits = random_bits((6, k), generator)
    coded = code.encode(bits)
    assert coded.shape == (6, n) and coded.dtype == torch.float32
    assert torch.equal(coded[:, : k - 2 * code.encoder.z], bits[:, 2 * code.encoder.z :])  # systematic after 2Z punctured
    assert torch.equal(code.decode(20.0 * (2.0 * coded - 1.0)), bits)


def test_spec_and_properties():
    for spec, n in [("ldpc-1/2", 1024), ("ldpc-2/3", 768), ("ldpc-1/3", 1536), (" LDPC-1/2 ", 1024)]:
        code = LDPC5GCode.from_spec(spec, k=512)
        assert (code.k, code.n, code.rate) == (512, n, 512 / n)
    code = LDPC5GCode.from_spec("ldpc-2/3", k=100, num_iter=5, decoder="sionna")
    assert (code.n, code.num_iter, code.decoder) == (150, 5, "sionna")


@pytest.mark.parametrize("decoder", ["fast", pytest.param("numba", marks=needs_numba)])
def test_leading_dims_and_dtypes(codes, decoder, generator):
    code = codes[(100, 300, decoder)]
    bits = random_bits((2, 3, 100), generator)
    coded = code.encode(bits.double())
    assert coded.shape == (2, 3, 300) and coded.dtype == torch.float64
    llr = 20.0 * (2.0 * coded - 1.0)
    decoded = code.decode(llr)
    assert decoded.shape == (2, 3, 100) and decoded.dtype == torch.float64 and torch.equal(decoded, bits.double())
    assert torch.equal(code.decode(llr[0, 0].float()), bits[0, 0])
    assert torch.equal(code.decode(llr.half()).float(), bits)


def test_coded_ber_beats_uncoded_and_is_error_free_at_high_snr(codes, generator):
    code = codes[(512, 1024, "fast")]
    bits = random_bits((200, 512), generator)
    coded = code.encode(bits)
    uncoded = norm.sf(math.sqrt(2 * 10 ** (2.0 / 10)))  # BPSK Q(sqrt(2 Eb/N0)) at 2 dB, ~0.0375
    ber = (code.decode(bpsk_awgn_llr(coded, 2.0, code.rate, generator)) != bits).float().mean().item()
    assert uncoded == pytest.approx(0.0375, abs=5e-4)
    assert ber < uncoded / 10
    assert torch.equal(code.decode(bpsk_awgn_llr(coded, 4.0, code.rate, generator)), bits)


def test_fast_decoder_is_bit_identical_to_sionna_at_high_snr(codes, generator):
    bits = random_bits((100, 512), generator)
    llr = bpsk_awgn_llr(codes[(512, 1024, "fast")].encode(bits), 3.5, 0.5, generator)
    fast, reference = codes[(512, 1024, "fast")].decode(llr), codes[(512, 1024, "sionna")].decode(llr)
    assert torch.equal(fast, reference) and torch.equal(fast, bits)


@pytest.mark.parametrize("k,n", CODES)
def test_zero_iterations_give_the_same_channel_decisions_as_sionna(k, n, generator):
    """With no iteration both decoders return the hard channel decisions: same LLR positions and sign."""
    llr = torch.randn((50, n), generator=generator)
    fast, reference = LDPC5GCode(k, n, num_iter=0), LDPC5GCode(k, n, num_iter=0, decoder="sionna")
    decoded = fast.decode(llr)
    assert torch.equal(decoded, reference.decode(llr))
    assert torch.equal(decoded[:, 2 * fast.encoder.z :], (llr[:, : k - 2 * fast.encoder.z] > 0).float())
    assert torch.equal(decoded[:, : 2 * fast.encoder.z], torch.ones(50, 2 * fast.encoder.z))  # punctured: LLR 0 -> 1


@pytest.mark.parametrize("k,n,ebn0_db", [(512, 1024, 1.25), (512, 768, 2.5)])
def test_fast_decoder_matches_sionna_ber_at_moderate_snr(codes, k, n, ebn0_db, generator):
    bits = random_bits((300, k), generator)
    llr = bpsk_awgn_llr(codes[(k, n, "fast")].encode(bits), ebn0_db, k / n, generator)
    fast_errors = codes[(k, n, "fast")].decode(llr) != bits
    reference_errors = codes[(k, n, "sionna")].decode(llr) != bits
    ber = reference_errors.float().mean().item()
    assert 1e-3 < ber < 0.1  # the decoders have real work here
    assert_rate_within_binomial(int(fast_errors.sum()), bits.numel(), ber, z=3.0)
    assert_rate_within_binomial(int(fast_errors.any(1).sum()), len(bits), reference_errors.any(1).float().mean().item(), z=3.0)


@needs_numba
@pytest.mark.parametrize("k,n", [(512, 1024), (100, 300), (512, 555)])
@pytest.mark.parametrize("num_iter", [1, 3, 20])
def test_numba_decoder_equals_fast_decoder_on_random_llrs(k, n, num_iter, generator):
    """Random LLRs (mostly no codeword is found: every word runs all iterations). The kernel's messages
    differ from torch's by float32 rounding (~1e-7 relative), so hard decisions could in principle
    flip where a posterior is within rounding of 0; on these draws they are all equal."""
    llr = 3.0 * torch.randn((64, n), generator=generator)
    fast, compiled = LDPC5GCode(k, n, num_iter, "fast"), LDPC5GCode(k, n, num_iter, "numba")
    assert torch.equal(compiled.decode(llr), fast.decode(llr))


@needs_numba
@pytest.mark.parametrize("k,n,ebn0_db", [(512, 1024, 1.0), (512, 1024, 1.75), (512, 1024, 2.5), (512, 768, 2.0), (100, 300, 1.5)])
def test_numba_decoder_equals_fast_decoder_on_noisy_codewords(codes, k, n, ebn0_db, generator):
    """Same bits as the torch decoder in the waterfall and above. Both stop a codeword once every parity
    check holds; the torch decoder may keep a converged word iterating until a quarter of its batch has
    converged, the kernel never does, so its output does not depend on the batch (checked on 8 words)."""
    bits = random_bits((200, k), generator)
    llr = bpsk_awgn_llr(codes[(k, n, "fast")].encode(bits), ebn0_db, k / n, generator)
    compiled = codes[(k, n, "numba")].decode(llr)
    assert torch.equal(compiled, codes[(k, n, "fast")].decode(llr))
    assert all(torch.equal(codes[(k, n, "numba")].decode(llr[i]), compiled[i]) for i in range(8))


@needs_numba
def test_numba_decoder_block_errors_equal_fast_decoder_and_threads_agree(codes, generator):
    bits = random_bits((200, 512), generator)
    llr = bpsk_awgn_llr(codes[(512, 1024, "fast")].encode(bits), 1.25, 0.5, generator)
    fast_errors = int((codes[(512, 1024, "fast")].decode(llr) != bits).any(1).sum())
    compiled = codes[(512, 1024, "numba")].decode(llr)
    assert int((compiled != bits).any(1).sum()) == fast_errors > 5  # the decoders have real work here
    torch.set_num_threads(2)  # two ranges of 100 codewords on two threads; the fixture restores 1
    try:
        assert torch.equal(codes[(512, 1024, "numba")].decode(llr), compiled)
    finally:
        torch.set_num_threads(1)


def test_numba_decoder_needs_numba(monkeypatch):
    assert LDPC5GCode(100, 300).decoder == DEFAULT_DECODER == ("numba" if ldpc._ldpc_kernel is not None else "fast")
    monkeypatch.setattr(ldpc, "_ldpc_kernel", None)
    with pytest.raises(ValueError, match=r"decoder='numba' needs numba.*digisem\[fast\]"):
        LDPC5GCode(100, 300, decoder="numba")

def test_hard_decision_decoding_corrects_flips(codes, generator):
    code = codes[(512, 1024, "fast")]
    bits = random_bits((20, 512), generator)
    coded = code.encode(bits)
    flips = torch.zeros_like(coded)
    for row in flips:
        row[torch.randperm(1024, generator=generator)[:8]] = 1.0
    received = (coded + flips) % 2
    assert (received != coded).sum().item() == 20 * 8
    assert torch.equal(code.decode_hard(received, 0.01), bits)
    assert torch.equal(codes[(512, 1024, "sionna")].decode_hard(received, 0.01), bits)


@pytest.mark.parametrize("k,n", [(512, 1024), (100, 300), (512, 555)])
def test_codewords_satisfy_the_base_graph_parity_checks(codes, k, n, generator):
    """H c = 0 (mod 2) for H lifted from the TS 38.212 base graph, on every row whose bits are known.

    The full codeword is [u, fillers (0), parity]; rate matching sends it from bit 2Z on, fillers
    removed. The lowest-rate code on the same base graph reveals most parity bits; rows that touch
    a bit it does not send are skipped.
    """
    encoder = codes[(k, n, "fast")].encoder
    h = encoder.pcm.tocsr()
    z, k_ldpc = encoder.z, encoder.k_ldpc
    bg1 = h.shape[1] == 68 * z
    longest = LDPC5GEncoder(k, 3 * k if bg1 else 5 * k, bg="bg1" if bg1 else "bg2")
    bits = random_bits((4, k), generator)
    sent = longest(bits)
    assert torch.equal(encoder(bits), sent[:, :n])  # rate matching: a prefix of the same buffer
    full = torch.cat([bits[:, : 2 * z], sent[:, : k - 2 * z], torch.zeros(4, k_ldpc - k), sent[:, k - 2 * z :]], 1)
    known = full.shape[1]
    rows = [r for r in range(h.shape[0]) if h.indices[h.indptr[r] : h.indptr[r + 1]].max() < known]
    assert len(rows) >= h.shape[0] // 2
    syndrome = h[rows][:, :known] @ full.numpy().T.astype(np.int64)
    assert not (syndrome % 2).any()


def test_bad_input_raises_clear_errors(codes):
    code = codes[(100, 300, "fast")]
    with pytest.raises(ValueError, match=r"last dimension k=100.*\(4, 99\)"):
        code.encode(torch.zeros(4, 99))
    with pytest.raises(ValueError, match=r"last dimension n=300.*\(4, 100\)"):
        code.decode(torch.zeros(4, 100))
    with pytest.raises(TypeError, match="floating-point.*int64"):
        code.encode(torch.zeros(4, 100, dtype=torch.int64))
    with pytest.raises(TypeError, match="floating-point.*int32"):
        code.decode(torch.zeros(4, 300, dtype=torch.int32))
    with pytest.raises(ValueError, match="only 0 and 1"):
        code.encode(torch.full((4, 100), 0.5))
    for bad in (float("nan"), float("inf")):
        llr = torch.zeros(4, 300)
        llr[1, 7] = bad
        with pytest.raises(ValueError, match="NaN or inf"):
            code.decode(llr)
    with pytest.raises(ValueError, match="empty"):
        code.decode(torch.zeros(0, 300))
    with pytest.raises(ValueError, match="empty"):
        code.encode(torch.zeros(3, 0, 100))
    with pytest.raises(ValueError, match="0 < p < 0.5"):
        code.decode_hard(torch.zeros(4, 300), 0.5)
    with pytest.raises(ValueError, match="only 0 and 1"):
        code.decode_hard(torch.full((4, 300), 2.0), 0.1)


@pytest.mark.filterwarnings("ignore:Effective coderate")
@pytest.mark.parametrize("k,n", [(8, 16), (9000, 18000), (512, 520), (100, 1000)])
def test_invalid_code_parameters(k, n):
    with pytest.raises(ValueError, match=rf"k={k}, n={n}.*Allowed: 12 <= k <= 8448"):
        LDPC5GCode(k, n)


@pytest.mark.filterwarnings("ignore:Effective coderate")
def test_invalid_arguments():
    with pytest.raises(TypeError, match="k must be an int"):
        LDPC5GCode(512.0, 1024)
    with pytest.raises(ValueError, match="decoder must be one of"):
        LDPC5GCode(512, 1024, decoder="minsum")
    with pytest.raises(ValueError, match="num_iter must be >= 0"):
        LDPC5GCode(512, 1024, num_iter=-1)
    for spec in ("ldpc-1/0", "ldpc-half", "turbo-1/2", "ldpc-1/2/3", 0.5):
        with pytest.raises(ValueError, match="unknown code spec"):
            LDPC5GCode.from_spec(spec)
    with pytest.raises(ValueError, match="k=512, n=512"):
        LDPC5GCode.from_spec("ldpc-1/1")
