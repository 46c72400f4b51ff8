"""VectorQuantizer codebook care: data-dependent initialization, dead-code restart, eval mode, state."""

import torch

from digisem.digitize import VectorQuantizer
from digisem.systems.vqvae import MaskedVQVAE, MaskedVQVAEConfig
from digisem.weights import read_weights, save_weights


def features(count: int, dim: int = 8, scale: float = 3.0, offset: float = 0.0, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (offset + scale * torch.randn(count, dim, generator=generator)).requires_grad_()


def nearest_distance(points: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    """Distance of each row of ``points`` to its nearest row of ``batch``."""
    return torch.cdist(points.detach(), batch.detach()).min(1).values


def test_first_training_call_puts_every_basis_vector_on_a_feature_of_the_batch():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(codebook_size=16, dim=8).train()
    batch = features(40, scale=3.0, offset=5.0)
    # far from the default initialization (uniform in +-1/16 around 0)
    assert nearest_distance(quantizer.codebook, batch).min() > 1.0
    assert not bool(quantizer.initialized)
    quantizer(batch)
    assert bool(quantizer.initialized)
    feature_scale = batch.detach().std().item()  # about 3
    distances = nearest_distance(quantizer.codebook, batch)
    assert distances.max() < 0.1 * feature_scale, distances
    # the typical distance between distinct features is much larger: the codes sit on the batch
    assert torch.pdist(batch.detach()).min() > distances.max()


def test_initialization_happens_once():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(codebook_size=16, dim=8, restart_every=0).train()
    quantizer(features(40, seed=0))
    after_first = quantizer.codebook.detach().clone()
    quantizer(features(40, offset=50.0, seed=1))  # a very different batch
    assert torch.equal(quantizer.codebook.detach(), after_first)


def _quantizer_with_one_live_code(restart_every: int) -> VectorQuantizer:
    """An initialized quantizer whose code 0 sits at the origin and every other code far away."""
    quantizer = VectorQuantizer(codebook_size=16, dim=8, restart_every=restart_every).train()
    quantizer(features(40))  # initialization
    with torch.no_grad():
        quantizer.codebook.zero_()
        quantizer.codebook[1:] = 100.0 + torch.arange(15, dtype=torch.float32)[:, None]
    return quantizer


def test_dead_codes_restart_onto_batch_features_after_restart_every_calls():
    torch.manual_seed(0)
    restart_every = 5
    quantizer = _quantizer_with_one_live_code(restart_every)
    far_codes = quantizer.codebook.detach()[1:].clone()
    batches = [features(30, scale=0.2, seed=10 + step) for step in range(restart_every)]
    for batch in batches[:-1]:
        _, indices, _ = quantizer(batch)
        assert bool((indices == 0).all()), "every feature maps to code 0"
    assert torch.equal(quantizer.codebook.detach()[1:], far_codes), "no restart before restart_every calls"
    quantizer(batches[-1])
    codebook = quantizer.codebook.detach()
    assert torch.equal(codebook[0], torch.zeros(8)), "the code in use stays"
    distances = nearest_distance(codebook[1:], batches[-1])
    assert distances.max() < 0.05, distances  # moved onto features of the current batch (scale 0.2)
    assert (codebook[1:] - far_codes).abs().min() > 50


def test_restart_every_zero_never_restarts():
    torch.manual_seed(0)
    quantizer = _quantizer_with_one_live_code(0)
    before = quantizer.codebook.detach().clone()
    for step in range(30):
        quantizer(features(30, scale=0.2, seed=step))
    assert torch.equal(quantizer.codebook.detach(), before)


def test_eval_mode_never_changes_the_codebook():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(codebook_size=16, dim=8, restart_every=1).eval()
    before = quantizer.codebook.detach().clone()
    for step in range(5):
        quantizer(features(30, offset=4.0, seed=step))
    assert torch.equal(quantizer.codebook.detach(), before)
    assert not bool(quantizer.initialized)
    # ... and after initialization in training mode, eval calls still leave it alone
    quantizer.train()(features(30, seed=99))
    initialized = quantizer.codebook.detach().clone()
    quantizer.eval()
    for step in range(5):
        quantizer(features(30, scale=0.01, seed=step))  # would leave most codes dead
    assert torch.equal(quantizer.codebook.detach(), initialized)


def test_initialized_flag_is_in_the_state_dict_and_prevents_reinitialization():
    torch.manual_seed(0)
    source = VectorQuantizer(codebook_size=16, dim=8).train()
    source(features(40, seed=0))
    state = source.state_dict()
    assert "initialized" in state and bool(state["initialized"])
    loaded = VectorQuantizer(codebook_size=16, dim=8)
    loaded.load_state_dict(state)
    loaded.train()(features(40, offset=20.0, seed=1))  # a fresh quantizer would initialize on this batch
    assert torch.equal(loaded.codebook.detach(), source.codebook.detach())


def test_initialized_flag_survives_a_weights_file(tmp_path):
    torch.manual_seed(0)
    config = MaskedVQVAEConfig(image_size=16, patch=4, width=16, depth=1, heads=2, decoder_width=8, decoder_depth=1, code_dim=8, codebook_size=16, classes=4)
    model = MaskedVQVAE(config).train()
    model(torch.rand(2, 3, 16, 16))  # the first training call initializes the codebook
    assert bool(model.digitizer.initialized)
    path = save_weights(model, tmp_path / "model.safetensors")
    state, _ = read_weights(path)
    assert bool(state["digitizer.initialized"])
    fresh = MaskedVQVAE(config)
    fresh.load_state_dict(state)
    assert bool(fresh.digitizer.initialized)
    fresh.train()(torch.rand(2, 3, 16, 16) * 0 + 0.9)
    assert torch.equal(fresh.digitizer.codebook.detach(), model.digitizer.codebook.detach())
