"""SCDM: the VE forward process matches AWGN, the N_snr map, samplers against exact posterior means."""

import math

import pytest
import torch

from digisem.link import SymbolLink
from digisem.systems.scdm import (
    SCDM,
    MMSEDenoiser,
    SamplerConfig,
    SCDMConfig,
    ScoreNetConfig,
    ScoreUNet,
    VESchedule,
    dsm_loss,
    sample,
    to_complex,
    to_real,
    tweedie,
)

QPSK = torch.tensor([1 + 1j, 1 - 1j, -1 + 1j, -1 - 1j], dtype=torch.complex64) / math.sqrt(2)


def draw_qpsk(batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
    return QPSK[torch.randint(0, 4, (batch, length), generator=generator)]


def exact_score(points: torch.Tensor):
    """Score of ``sum_k N(mu_k, v I)`` (uniform mixture over ``points``) in real coordinates ``[B, 2, n]``:
    ``sum_k w_k (mu_k - x) / v`` with ``w`` the posterior weights: the independent truth for samplers."""
    mu = torch.view_as_real(points)  # [K, 2]

    def score(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        v = (sigma.double() ** 2 / 2)[:, None, None, None]
        xs = x.double().permute(0, 2, 1)[:, :, None, :]  # [B, n, 1, 2]
        distances = (xs - mu.double()[None, None]).pow(2).sum(-1, keepdim=True)  # [B, n, K, 1]
        weights = torch.softmax(-distances / (2 * v), dim=2)
        posterior_mean = (weights * mu.double()[None, None]).sum(2)  # [B, n, 2]
        return ((posterior_mean - x.double().permute(0, 2, 1)) / v[:, :, :, 0]).permute(0, 2, 1).to(x.dtype)

    return score


def test_schedule_levels_are_geometric_with_clean_step_zero():
    schedule = VESchedule(0.1, 10.0, 64)
    assert schedule.sigmas[0] == 0
    assert schedule.sigmas[1] == pytest.approx(0.1) and schedule.sigmas[64] == pytest.approx(10.0)
    ratios = schedule.sigmas[2:] / schedule.sigmas[1:-1]
    assert torch.allclose(ratios, torch.full_like(ratios, 100 ** (1 / 63)))
    assert schedule.snr_range_db == pytest.approx((-20.0, 20.0))


@pytest.mark.parametrize("step", [1, 20, 64])
def test_forward_chain_at_step_i_has_the_channel_noise_variance(step, generator):
    """Eq. 7 applied i times adds noise of variance sigma_i^2 per complex symbol, exactly what the
    AWGN channel adds at Es/N0 = -20 log10 sigma_i: compare both with the closed form (chi-square bounds)."""
    schedule = VESchedule(0.1, 10.0, 64)
    z0 = draw_qpsk(200, 256, generator)
    z = z0
    for i in range(1, step + 1):
        z = schedule.forward_step(z, i, generator)
    snr_db = schedule.snr_db_of_step(step)
    n0 = 10 ** (-snr_db / 10)
    channel = SymbolLink("awgn", normalize=False)(z0, snr_db, generator).symbols
    count = z0.numel()
    for noise in (z - z0, channel - z0):
        # per complex symbol |n|^2 ~ N0 / 2 * chi2(2): its mean has relative std 1 / sqrt(count)
        assert noise.abs().pow(2).mean().item() == pytest.approx(n0, rel=6 / math.sqrt(count))
        assert noise.real.var().item() == pytest.approx(n0 / 2, rel=8 / math.sqrt(count))
        assert noise.imag.var().item() == pytest.approx(n0 / 2, rel=8 / math.sqrt(count))


def test_perturb_is_the_marginal_of_the_forward_chain(generator):
    schedule = VESchedule(0.1, 10.0, 64)
    z0 = to_real(draw_qpsk(100, 256, generator))
    noisy, noise = schedule.perturb(z0, 30, generator)
    assert torch.allclose(noisy - z0, noise * float(schedule.sigmas[30]) / math.sqrt(2), atol=1e-6)
    assert (noisy - z0).pow(2).mean().item() == pytest.approx(float(schedule.sigmas[30]) ** 2 / 2, rel=0.03)


def test_step_for_snr_is_monotone_and_exact_at_the_levels():
    schedule = VESchedule(0.1, 10.0, 64)
    for step in (1, 2, 17, 40, 63, 64):
        assert int(schedule.step_for_snr(schedule.snr_db_of_step(step))) == step
    snrs = torch.linspace(-20, 30, 501)
    steps = schedule.step_for_snr(snrs)
    assert bool((steps[1:] <= steps[:-1]).all()), "N_snr must not increase with the SNR"
    assert int(schedule.step_for_snr(0.0)) == round(math.log(1 / 0.1) / math.log(100) * 63 + 1)  # sigma = 1
    assert int(schedule.step_for_snr(30.0)) == 0  # cleaner than sigma_min: nothing to do
    assert schedule.step_for_snr(torch.tensor([-18.0, 18.0])).tolist() == [int(schedule.step_for_snr(-18.0)), int(schedule.step_for_snr(18.0))]


def test_snr_below_the_trained_range_is_refused():
    schedule = VESchedule(0.1, 10.0, 64)
    with pytest.raises(ValueError, match=r"below this SCDM's trained range \[-20.0, 20.0\] dB"):
        schedule.step_for_snr(-25.0)
    with pytest.raises(ValueError, match="finite"):
        schedule.step_for_snr(float("nan"))


def test_scdm_returns_symbols_unchanged_above_the_finest_level(generator):
    scdm = SCDM(SCDMConfig(steps=8, score={"channels": 8, "multipliers": [1, 1, 1], "heads": 2, "embed_dim": 16})).eval()
    received = draw_qpsk(3, 16, generator) + 0.001
    assert torch.equal(scdm(received, 60.0, generator=generator), received)
    mixed = scdm(received, torch.tensor([60.0, 0.0, 60.0]), generator=generator)
    assert torch.equal(mixed[0], received[0]) and torch.equal(mixed[2], received[2]) and not torch.equal(mixed[1], received[1])


def test_scdm_rejects_bad_input(generator):
    scdm = SCDM(SCDMConfig(steps=8, score={"channels": 8, "multipliers": [1, 1, 1], "heads": 2, "embed_dim": 16}, codec={"channel_uses": 16})).eval()
    with pytest.raises(ValueError, match="trained on sequences of n = 16 symbols, got n = 24"):
        scdm(draw_qpsk(2, 24, generator), 0.0)
    with pytest.raises(ValueError, match="multiple of 8"):
        scdm(draw_qpsk(2, 12, generator), 0.0)
    with pytest.raises(TypeError, match="complex"):
        scdm(torch.zeros(2, 16), 0.0)
    with pytest.raises(ValueError, match="below this SCDM's trained range"):
        scdm(draw_qpsk(2, 16, generator), -30.0)
    with pytest.raises(ValueError, match="unknown predictor"):
        SamplerConfig(predictor="euler-maruyama")


def _noisy(z: torch.Tensor, snr_db: float, generator: torch.Generator) -> torch.Tensor:
    return SymbolLink("awgn", normalize=False)(z, snr_db, generator).symbols


def test_mmse_denoiser_is_the_closed_form_posterior_mean_for_bpsk(generator):
    """BPSK +-1 in complex AWGN of variance N0: E[x | y] = tanh(2 Re(y) / N0)."""
    prior = torch.tensor([1.0 + 0j, -1.0 + 0j], dtype=torch.complex64)
    y = torch.complex(torch.randn(4, 32, generator=generator), torch.randn(4, 32, generator=generator))
    for snr_db in (-6.0, 0.0, 6.0):
        n0 = 10 ** (-snr_db / 10)
        expected = torch.tanh(2 * y.real / n0)
        estimate = MMSEDenoiser(prior)(y, snr_db)
        assert torch.allclose(estimate.real, expected, atol=1e-5) and estimate.imag.abs().max() < 1e-6


def test_tweedie_with_the_exact_score_is_the_mmse_estimate(generator):
    """Tweedie's formula with the true score of an i.i.d. QPSK prior equals the per-symbol posterior mean."""
    schedule = VESchedule(0.1, 10.0, 64)
    z = draw_qpsk(8, 32, generator)
    for step in (10, 35, 60):
        snr = schedule.snr_db_of_step(step)
        y = _noisy(z, snr, generator)
        sigma = schedule.sigmas[step].float().expand(8)
        estimate = to_complex(tweedie(exact_score(QPSK), to_real(y), sigma))
        assert torch.allclose(estimate, MMSEDenoiser(QPSK)(y, snr), atol=1e-4)


SAMPLER_BOUNDS = {
    # ratio of the sampler's latent MSE to the optimum (the per-symbol MMSE estimate) with the exact score:
    # Tweedie is the posterior mean itself; the reverse-diffusion predictor draws posterior samples
    # (MSE = 2 x MMSE for independent symbols); the deterministic ODE lands in between
    "Tweedie (1 step)": (0.99, 1.01),
    "predictor only": (1.6, 2.4),
    "ODE": (1.0, 1.6),
}


@pytest.mark.parametrize("config", [SamplerConfig(tweedie=True), SamplerConfig(corrector="none"), SamplerConfig(predictor="ode", corrector="none"), SamplerConfig()], ids=lambda c: c.label())
def test_samplers_with_the_exact_score_reduce_latent_mse(config, generator):
    """On i.i.d. QPSK at 6 dB with the exact score, every sampler lands closer to the sent symbols than
    the channel output, and each sits where theory puts it relative to the optimum; the evaluation
    count is 1 (Tweedie) or N_snr x (1 + L) - L (no corrector after the last step)."""
    schedule = VESchedule(0.1, 10.0, 64)
    z = draw_qpsk(128, 32, generator)
    snr = 6.0
    y = _noisy(z, snr, generator)
    start = schedule.step_for_snr(snr).expand(128)
    denoised, evaluations = sample(exact_score(QPSK), schedule, to_real(y), start, config, generator)
    mse = (to_complex(denoised) - z).abs().pow(2).mean().item()
    channel = (y - z).abs().pow(2).mean().item()
    optimum = (MMSEDenoiser(QPSK)(y, snr) - z).abs().pow(2).mean().item()
    assert mse < channel
    low, high = SAMPLER_BOUNDS.get(config.label(), (1.0, 4.0))
    assert low * optimum < mse < high * optimum
    corrections = config.corrector_steps if config.corrector == "langevin" else 0
    assert evaluations == (1 if config.tweedie else int(start[0]) * (1 + corrections) - corrections)


def test_langevin_corrector_drifts_away_from_the_observation(generator):
    """The corrector targets the marginal p_sigma(x), not the posterior given what was received, so with
    the exact score the paper's PC sampler (L = 2, r = 0.16) ends farther from the sent symbols than the
    predictor alone, and at 0 dB farther than no denoising at all (a property of the algorithm)."""
    schedule = VESchedule(0.1, 10.0, 64)
    z = draw_qpsk(128, 32, generator)
    y = _noisy(z, 0.0, generator)
    start = schedule.step_for_snr(0.0).expand(128)
    errors = {}
    for config in (SamplerConfig(), SamplerConfig(corrector="none")):
        denoised, _ = sample(exact_score(QPSK), schedule, to_real(y), start, config, generator)
        errors[config.label()] = (to_complex(denoised) - z).abs().pow(2).mean().item()
    assert errors["PC (L=2)"] > 1.2 * errors["predictor only"]
    assert errors["PC (L=2)"] > (y - z).abs().pow(2).mean().item()


def test_a_briefly_trained_score_network_denoises(generator):
    """Denoising score matching on i.i.d. QPSK for 250 steps: the network's Tweedie estimate already
    removes most of the channel noise at 0 dB (loose bound: a regression test of training, not quality)."""
    torch.manual_seed(0)
    schedule = VESchedule(0.1, 10.0, 16)
    network = ScoreUNet(ScoreNetConfig(channels=16, multipliers=(1, 1, 1), heads=2, embed_dim=32))
    optimizer = torch.optim.Adam(network.parameters(), 2e-3)
    for _ in range(250):
        loss = dsm_loss(network, draw_qpsk(64, 16, generator), schedule, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    network.eval()
    z = draw_qpsk(256, 16, generator)
    y = _noisy(z, 0.0, generator)
    with torch.no_grad():
        estimate = to_complex(tweedie(network, to_real(y), torch.full((256,), 1.0)))
    mse = (estimate - z).abs().pow(2).mean().item()
    optimum = (MMSEDenoiser(QPSK)(y, 0.0) - z).abs().pow(2).mean().item()
    assert mse < 0.7 * (y - z).abs().pow(2).mean().item()
    assert mse < 1.5 * optimum


def test_score_network_shapes_and_scaling():
    network = ScoreUNet(ScoreNetConfig(channels=8, multipliers=(1, 2, 2), heads=2, embed_dim=16))
    x = torch.randn(3, 2, 32)
    out = network(x, torch.tensor([0.1, 1.0, 10.0]))
    assert out.shape == (3, 2, 32) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match=r"\[B, 2, n\] with n a multiple of 8"):
        network(torch.randn(3, 2, 30), torch.ones(3))


def test_a_mixed_snr_batch_evaluates_only_active_examples_and_equals_separate_batches(generator):
    """Per-example start steps (a batch of several SNRs): with the deterministic ODE sampler the mixed
    batch gives each example what a batch of its own SNR gives, and the score network sees only the
    examples still active (the sum of their start steps, not batch x largest)."""
    schedule = VESchedule(0.1, 10.0, 64)
    z = draw_qpsk(12, 32, generator)
    snrs = torch.tensor([0.0, 6.0, 12.0]).repeat_interleave(4)
    y = torch.cat([_noisy(z[k * 4:(k + 1) * 4], float(snrs[k * 4]), generator) for k in range(3)])
    start = schedule.step_for_snr(snrs)
    seen = []

    def counting_score(x, sigma):
        seen.append(x.shape[0])
        return exact_score(QPSK)(x, sigma)

    config = SamplerConfig(predictor="ode", corrector="none")
    mixed, _ = sample(counting_score, schedule, to_real(y), start, config, generator)
    assert sum(seen) == int(start.sum())
    for k in range(3):
        part = slice(k * 4, (k + 1) * 4)
        alone, _ = sample(exact_score(QPSK), schedule, to_real(y[part]), start[part], config, generator)
        torch.testing.assert_close(mixed[part], alone)
