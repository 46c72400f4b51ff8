"""Semantic noise and adversarial training against closed forms (linear losses, known gradients)."""

import copy

import pytest
import torch
from torch import nn

from digisem.attacks import (
    AdversarialWeightPerturbation,
    adversarial_training_step,
    fgsm,
    iterative_fgsm,
    patch_attack,
    pgd,
    pgd_l2,
    signal_to_semantic_noise_db,
    universal_receiver_noise,
)


def linear_loss(weights: torch.Tensor):
    """Per-example loss ``<w, x>``: its gradient is ``w`` everywhere, so the attacks have closed forms."""
    return lambda x: (x * weights).flatten(1).sum(1)


def test_fgsm_is_epsilon_times_the_gradient_sign(generator):
    x = torch.rand(4, 3, 8, 8, generator=generator) * 0.8 + 0.1
    w = torch.randn(3, 8, 8, generator=generator)
    adversarial = fgsm(linear_loss(w), x, 0.05)
    assert torch.allclose(adversarial, x + 0.05 * w.sign())
    clamped = fgsm(linear_loss(w), torch.zeros(2, 3, 8, 8), 0.05)
    assert float(clamped.min()) == 0.0, "images stay in [0, 1]"


def test_iterative_fgsm_stays_in_the_ball_and_uses_the_whole_budget(generator):
    x = torch.rand(4, 3, 8, 8, generator=generator) * 0.8 + 0.1
    w = torch.randn(3, 8, 8, generator=generator)
    adversarial = iterative_fgsm(linear_loss(w), x, 0.03, 0.01, 5)
    # a linear loss pushes every pixel to the edge of the L-infinity ball
    assert torch.allclose(adversarial, x + 0.03 * w.sign(), atol=1e-6)
    started = pgd(linear_loss(w), x, 0.03, 0.01, 8, generator=generator)  # 8 steps reach the edge from any random start
    assert torch.allclose(started, x + 0.03 * w.sign(), atol=1e-6)
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 16), nn.Tanh(), nn.Linear(16, 1))
    loss = lambda images: model(images).squeeze(1)
    attacked = pgd(loss, x, 0.02, 0.008, 4, generator=generator)
    assert float((attacked - x).abs().max()) <= 0.02 + 1e-6 and float(attacked.min()) >= 0 and float(attacked.max()) <= 1
    with torch.no_grad():
        assert bool((loss(attacked) > loss(x)).all()), "the attack must increase every example's loss"


def test_attack_arguments_are_checked(generator):
    x = torch.rand(2, 3, 4, 4, generator=generator)
    with pytest.raises(ValueError, match="must exceed epsilon"):
        iterative_fgsm(linear_loss(torch.ones(3, 4, 4)), x, 0.05, 0.01, 3)
    with pytest.raises(ValueError, match=r"per-example losses of shape \[2\]"):
        fgsm(lambda images: images.sum(), x, 0.01)
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        fgsm(linear_loss(torch.ones(3, 4, 4)), x, -0.1)


def complex_randn(*shape, generator):
    return torch.complex(torch.randn(*shape, generator=generator), torch.randn(*shape, generator=generator))


def test_universal_noise_single_sample_is_the_channel_matched_direction(generator):
    """With loss Re<c, y> the gradient is c: the perturbation is epsilon H^H c / ||H^H c||, which delivers
    the largest loss increase Re<c, H dx> = epsilon ||H^H c|| among perturbations of norm epsilon."""
    nr, nt, length = 4, 8, 16
    c = complex_randn(1, nr, length, generator=generator)
    loss = lambda y: (c.conj() * y).real.flatten(1).sum(1)
    received = complex_randn(1, nr, length, generator=generator)
    channel = complex_randn(1, nr, nt, generator=generator) / 2**0.5
    dx = universal_receiver_noise(loss, received, channel, epsilon=2.0, step=1.0, steps=3)
    matched = channel[0].conj().T @ c[0]
    assert dx.shape == (nt, length)
    assert torch.allclose(dx, 2.0 * matched / matched.norm(), atol=1e-5)
    gain = (c[0].conj() * (channel[0] @ dx)).real.sum()
    for _ in range(20):
        other = complex_randn(nt, length, generator=generator)
        other = 2.0 * other / other.norm()
        assert gain >= (c[0].conj() * (channel[0] @ other)).real.sum()


def test_universal_noise_is_the_weighted_running_average_of_algorithm_1(generator):
    n, nr, nt, length = 5, 2, 2, 8
    c = complex_randn(n, nr, length, generator=generator)
    loss = lambda y: (c.conj() * y).real.flatten(1).sum(1)
    channels = complex_randn(n, nr, nt, generator=generator)
    dx = universal_receiver_noise(loss, complex_randn(n, nr, length, generator=generator), channels, epsilon=1.5, step=0.5, steps=4, weight=0.7)
    expected = torch.zeros(nt, length, dtype=torch.complex64)
    for index in range(n):
        direction = channels[index].conj().T @ c[index]
        expected = expected + 0.7 * direction / direction.norm()
        expected = 1.5 * expected / expected.norm()
    assert torch.allclose(dx, expected, atol=1e-5)
    assert float(dx.norm()) == pytest.approx(1.5)
    assert signal_to_semantic_noise_db(torch.ones(nt, length) * 3, dx) == pytest.approx(10 * torch.log10(torch.tensor(9.0 / (1.5**2 / (nt * length)))).item(), abs=1e-4)
    with pytest.raises(ValueError, match=r"attacker_channels must be complex \[N, Nr, Nt\]"):
        universal_receiver_noise(loss, complex_randn(n, nr, length, generator=generator), channels[:, :1], 1.0, 0.5, 4)


def test_weight_perturbation_has_the_per_layer_size_and_restores_exactly(generator):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    x, labels = torch.randn(16, 6, generator=generator), torch.randint(0, 3, (16,), generator=generator)
    loss = lambda: nn.functional.cross_entropy(model(x), labels)
    before = copy.deepcopy(model.state_dict())
    clean = float(loss().detach())
    awp = AdversarialWeightPerturbation(model, gamma=0.01)
    awp.perturb(loss)
    for name, value in model.state_dict().items():
        if value.dim() > 1:
            assert float((value - before[name]).norm()) == pytest.approx(0.01 * float(before[name].norm()), rel=1e-4), name
        else:
            assert torch.equal(value, before[name]), f"{name}: biases are not perturbed"
    assert float(loss().detach()) > clean, "one ascent step must increase the loss"
    with pytest.raises(RuntimeError, match="restore"):
        awp.perturb(loss)
    awp.restore()
    for name, value in model.state_dict().items():
        assert torch.allclose(value, before[name], atol=1e-7), name


def test_adversarial_training_step_applies_the_gradient_taken_at_the_perturbed_weights(generator):
    """P3 with SGD: theta <- theta - lr * grad L(theta + nu; x'), x' from the attack at theta."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 2))
    x, labels = torch.rand(8, 6, generator=generator), torch.randint(0, 2, (8,), generator=generator)
    per_example = lambda inputs: nn.functional.cross_entropy(model(inputs), labels, reduction="none")
    attack = lambda loss_fn, inputs: fgsm(loss_fn, inputs, 0.05)
    reference = copy.deepcopy(model)
    adversarial = fgsm(lambda inputs: nn.functional.cross_entropy(reference(inputs), labels, reduction="none"), x, 0.05)
    awp_reference = AdversarialWeightPerturbation(reference, 0.02)
    awp_reference.perturb(lambda: nn.functional.cross_entropy(reference(adversarial), labels))
    gradients = torch.autograd.grad(nn.functional.cross_entropy(reference(adversarial), labels), list(reference.parameters()))
    awp_reference.restore()
    expected = [p.detach() - 0.1 * g for p, g in zip(reference.parameters(), gradients)]
    loss = adversarial_training_step(per_example, x, torch.optim.SGD(model.parameters(), lr=0.1), attack, AdversarialWeightPerturbation(model, 0.02))
    assert loss > 0
    for parameter, value in zip(model.parameters(), expected):
        assert torch.allclose(parameter, value, atol=1e-6)


def test_from_spec_builds_the_named_attack(generator):
    from digisem.attacks import ATTACKS, from_spec

    assert ATTACKS == ("none", "fgsm", "ifgsm", "pgd", "pgd-l2", "patch")
    x = torch.rand(4, 3, 8, 8, generator=generator) * 0.8 + 0.1
    w = torch.randn(3, 8, 8, generator=generator)
    assert torch.equal(from_spec({"kind": "fgsm", "epsilon": 0.05})(linear_loss(w), x), fgsm(linear_loss(w), x, 0.05))
    assert torch.equal(from_spec({"kind": "ifgsm", "epsilon": 0.03, "step": 0.01, "steps": 5})(linear_loss(w), x), iterative_fgsm(linear_loss(w), x, 0.03, 0.01, 5))
    pgd_attack = from_spec({"kind": "pgd", "epsilon": 0.03, "step": 0.01, "steps": 8})
    a = pgd_attack(linear_loss(w), x, torch.Generator().manual_seed(3))
    b = pgd(linear_loss(w), x, 0.03, 0.01, 8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b), "the generator drives PGD's random start"
    assert from_spec(None) is None and from_spec({"kind": "none"}) is None and from_spec({}) is None


def test_from_spec_refuses_bad_specs():
    from digisem.attacks import from_spec

    with pytest.raises(ValueError, match="unknown attack 'cw'"):
        from_spec({"kind": "cw", "epsilon": 0.1})
    with pytest.raises(ValueError, match="needs step and steps"):
        from_spec({"kind": "ifgsm", "epsilon": 0.1})
    with pytest.raises(ValueError, match="needs step and steps"):
        from_spec({"kind": "pgd", "epsilon": 0.1, "step": 0.01})
    with pytest.raises(ValueError, match="needs epsilon"):
        from_spec({"kind": "fgsm"})


def test_pgd_l2_converges_to_the_closed_form_optimum_of_a_linear_loss(generator):
    """For ``<w, x>`` without bounds the best L2 perturbation of radius eps is ``eps w / ||w||``: from
    any start in the ball, steps of length 10 eps leave at most a tenth of the off-axis part after
    each projection, so 8 of them reach it; and every example stays in its ball."""
    x = torch.rand(4, 3, 8, 8, generator=generator)
    w = torch.randn(3, 8, 8, generator=generator)
    adversarial = pgd_l2(linear_loss(w), x, 0.5, 5.0, 8, bounds=None, generator=generator)
    assert torch.allclose(adversarial, x + 0.5 * w / w.norm(), atol=1e-5)
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 16), nn.Tanh(), nn.Linear(16, 1))
    loss = lambda images: model(images).squeeze(1)
    x = x * 0.8 + 0.1
    attacked = pgd_l2(loss, x, 0.3, 0.1, 5, generator=generator)
    assert bool(((attacked - x).flatten(1).norm(dim=1) <= 0.3 + 1e-5).all()) and float(attacked.min()) >= 0 and float(attacked.max()) <= 1
    with torch.no_grad():
        assert bool((loss(attacked) > loss(x)).all()), "the attack must increase every example's loss"


def test_a_patch_changes_one_square_per_image_to_the_linear_loss_optimum(generator):
    """Outside the square every value is the image's; inside, a linear loss drives each value to the
    bound its weight's sign points to (1 where w > 0, 0 where w < 0) within ceil(1 / step) steps."""
    x = torch.rand(5, 3, 16, 16, generator=generator) * 0.8 + 0.1
    w = torch.randn(3, 16, 16, generator=generator)
    adversarial = patch_attack(linear_loss(w), x, 6, 0.25, 4, generator=torch.Generator().manual_seed(1))
    changed = (adversarial != x).any(1)  # [B, H, W]
    for image in range(5):
        rows, cols = changed[image].nonzero(as_tuple=True)
        assert int(rows.max() - rows.min()) + 1 == 6 and int(cols.max() - cols.min()) + 1 == 6, "one 6x6 square"
        square = (slice(None), slice(int(rows.min()), int(rows.min()) + 6), slice(int(cols.min()), int(cols.min()) + 6))
        assert torch.equal(adversarial[image][square], (w[square] > 0).to(x.dtype))
        outside = torch.ones(16, 16, dtype=torch.bool)
        outside[square[1:]] = False
        assert torch.equal(adversarial[image][:, outside], x[image][:, outside])
    again = patch_attack(linear_loss(w), x, 6, 0.25, 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(adversarial, again), "the generator draws the positions"


def test_a_fixed_patch_sits_at_the_same_place_in_every_image(generator):
    """With position = (top, left) every image changes exactly in rows top..top+size-1 and columns
    left..left+size-1 (a linear loss moves every value there to a bound), and nowhere else."""
    from digisem.attacks import from_spec

    x = torch.rand(4, 3, 16, 16, generator=generator) * 0.8 + 0.1
    w = torch.randn(3, 16, 16, generator=generator)
    adversarial = patch_attack(linear_loss(w), x, 5, 0.25, 4, position=(2, 9))
    expected = torch.zeros(16, 16, dtype=torch.bool)
    expected[2:7, 9:14] = True
    assert torch.equal((adversarial != x).any(1), expected.expand(4, 16, 16))
    assert torch.equal(adversarial[:, :, 2:7, 9:14], (w[:, 2:7, 9:14] > 0).to(x.dtype).expand(4, -1, -1, -1))
    spec = {"kind": "patch", "size": 5, "step": 0.25, "steps": 4, "top": 2, "left": 9}
    assert torch.equal(from_spec(spec)(linear_loss(w), x), adversarial)
    with pytest.raises(ValueError, match="needs both top and left"):
        from_spec({"kind": "patch", "size": 5, "step": 0.25, "steps": 4, "top": 2})
    with pytest.raises(ValueError, match="leaves the 16x16 image"):
        patch_attack(linear_loss(w), x, 5, 0.25, 4, position=(12, 0))


def test_the_concentrated_attacks_are_built_and_checked_by_the_factory(generator):
    from digisem.attacks import from_spec

    x = torch.rand(2, 3, 8, 8, generator=generator)
    w = torch.randn(3, 8, 8, generator=generator)
    a = from_spec({"kind": "pgd-l2", "epsilon": 0.5, "step": 0.2, "steps": 3})(linear_loss(w), x, torch.Generator().manual_seed(2))
    assert torch.equal(a, pgd_l2(linear_loss(w), x, 0.5, 0.2, 3, generator=torch.Generator().manual_seed(2)))
    b = from_spec({"kind": "patch", "size": 4, "step": 0.5, "steps": 2, "epsilon": 0.0})(linear_loss(w), x, torch.Generator().manual_seed(2))
    assert torch.equal(b, patch_attack(linear_loss(w), x, 4, 0.5, 2, generator=torch.Generator().manual_seed(2)))
    with pytest.raises(ValueError, match="needs size"):
        from_spec({"kind": "patch", "step": 0.5, "steps": 2})
    with pytest.raises(ValueError, match="the L2 budget"):
        from_spec({"kind": "pgd-l2", "step": 0.5, "steps": 2})
    with pytest.raises(ValueError, match=r"patch size must be in \[1, 8\]"):
        patch_attack(linear_loss(w), x, 9, 0.5, 2)
    with pytest.raises(ValueError, match=r"needs images \[B, C, H, W\]"):
        patch_attack(linear_loss(w[0]), x[:, 0], 2, 0.5, 2)
