"""Semantic noise and adversarial training (the robust semantic communication paper, Sec. II).

Attacks work against any digisem system and any loss: each takes ``loss_fn``, a callable mapping the
attacked tensor to per-example losses ``[B]`` (the system's task loss: MSE for reconstruction,
cross-entropy for classification, ...), which the attack increases.

- :func:`fgsm` (eq. 6) and :func:`iterative_fgsm` (eq. 7, L-infinity projection; ``random_start``
  makes it PGD): sample-dependent semantic noise added to the image at the transmitter.
- :func:`pgd_l2` and :func:`patch_attack`: semantic noise that concentrates its energy (an L2 ball
  lets a few pixels change a lot; a patch changes one square freely), against which noise-related
  masking can learn a non-flat noise profile.
- :func:`universal_receiver_noise` (Algorithm 1): one sample-independent perturbation sent by an
  attacker who knows only the statistics of its channel ``H_a`` to the receiver; received signal
  ``y = H_t x + n + H_a dx`` (eq. 8).
- :class:`AdversarialWeightPerturbation` (problem P3, Algorithm 2): per-layer weight perturbation
  ``||nu_l|| <= gamma ||theta_l||`` found by one ascent step; :func:`adversarial_training_step` does
  one step of P2 (``awp=None``) or P3.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .link.errors import InputError

LossFn = Callable[[torch.Tensor], torch.Tensor]
"""``loss_fn(x) -> [B]`` per-example losses of the attacked tensor ``x : [B, ...]``."""


def _per_example_loss(loss_fn: LossFn, x: torch.Tensor) -> torch.Tensor:
    loss = loss_fn(x)
    if loss.dim() != 1 or loss.shape[0] != x.shape[0]:
        raise InputError(f"loss_fn must return per-example losses of shape [{x.shape[0]}], got shape {tuple(loss.shape)}")
    return loss


def _input_gradient(loss_fn: LossFn, x: torch.Tensor) -> torch.Tensor:
    """Gradient of the summed per-example loss with respect to ``x`` (each example's own gradient)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (gradient,) = torch.autograd.grad(_per_example_loss(loss_fn, x).sum(), x)
    return gradient


def _check_budget(epsilon: float, name: str = "epsilon") -> None:
    if not epsilon >= 0:
        raise InputError(f"{name} must be >= 0, got {epsilon}")


def fgsm(loss_fn: LossFn, x: torch.Tensor, epsilon: float, bounds: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """Fast gradient sign method (eq. 6): ``x + epsilon * sign(grad_x L)``, clamped to ``bounds``.

    Input: ``x : [B, ...]`` (images in [0, 1] by default); ``epsilon`` : L-infinity budget in the
    units of ``x`` (the paper: 0.016 for images in [0, 1]). ``bounds=None`` skips the clamp.
    Output: the contaminated ``x' : [B, ...]`` (detached).
    """
    _check_budget(epsilon)
    adversarial = x.detach() + epsilon * _input_gradient(loss_fn, x).sign()
    return adversarial.clamp(*bounds) if bounds is not None else adversarial


def iterative_fgsm(
    loss_fn: LossFn,
    x: torch.Tensor,
    epsilon: float,
    step: float,
    steps: int,
    *,
    random_start: bool = False,
    bounds: tuple[float, float] | None = (0.0, 1.0),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Iterative FGSM (eq. 7): ``K`` steps of size ``alpha``, each projected onto the L-infinity ball of
    radius ``epsilon`` around ``x`` (and clamped to ``bounds``); ``random_start=True`` starts from a
    uniform point of the ball (PGD, Madry et al.).

    Input: ``x : [B, ...]``; ``epsilon``, ``step`` (alpha) in the units of ``x``; ``steps`` (K).
    The paper asks for ``K * alpha > epsilon`` so the whole budget can be used; a smaller product
    raises ValueError. Output: ``x' : [B, ...]`` with ``|x' - x| <= epsilon`` element-wise.
    """
    _check_budget(epsilon)
    if steps < 1 or step <= 0:
        raise InputError(f"need steps >= 1 and step > 0, got steps={steps}, step={step}")
    if steps * step <= epsilon:
        raise InputError(f"steps * step = {steps * step:g} must exceed epsilon = {epsilon:g} (the paper's K alpha > epsilon)")
    original = x.detach()
    adversarial = original.clone()
    if random_start:
        noise = torch.rand(original.shape, generator=generator, device=original.device, dtype=original.dtype)
        adversarial = adversarial + (2 * noise - 1) * epsilon
    for _ in range(steps):
        if bounds is not None:
            adversarial = adversarial.clamp(*bounds)
        adversarial = adversarial + step * _input_gradient(loss_fn, adversarial).sign()
        adversarial = original + (adversarial - original).clamp(-epsilon, epsilon)
    return adversarial.clamp(*bounds) if bounds is not None else adversarial


def pgd(loss_fn: LossFn, x: torch.Tensor, epsilon: float, step: float, steps: int, *, bounds: tuple[float, float] | None = (0.0, 1.0), generator: torch.Generator | None = None) -> torch.Tensor:
    """Projected gradient descent with a random start: :func:`iterative_fgsm` with ``random_start=True``."""
    return iterative_fgsm(loss_fn, x, epsilon, step, steps, random_start=True, bounds=bounds, generator=generator)


def _per_example_norm(x: torch.Tensor) -> torch.Tensor:
    """L2 norm of each example of ``x : [B, ...]``, shaped ``[B, 1, ..., 1]`` for broadcasting."""
    return x.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1)))


def pgd_l2(loss_fn: LossFn, x: torch.Tensor, epsilon: float, step: float, steps: int, *, bounds: tuple[float, float] | None = (0.0, 1.0),
           generator: torch.Generator | None = None) -> torch.Tensor:
    """PGD in an L2 ball: ``steps`` ascent steps of L2 length ``step`` along each example's normalized
    gradient, each projected onto ``||x' - x||_2 <= epsilon`` (per example, over all its values) and
    clamped to ``bounds``; starts from a uniform direction at a uniform radius in the ball.

    Input: ``x : [B, ...]``; ``epsilon``, ``step`` in the units of ``x`` (L2 over all of an
    example's values: for a CIFAR image, ``0.016 * sqrt(3072) = 0.89`` is the L2 norm of the largest
    L-infinity ``0.016`` perturbation); ``steps >= 1``. Output: ``x' : [B, ...]`` (detached).
    """
    _check_budget(epsilon)
    if steps < 1 or step <= 0:
        raise InputError(f"need steps >= 1 and step > 0, got steps={steps}, step={step}")
    original = x.detach()
    direction = torch.randn(original.shape, generator=generator, device=original.device, dtype=original.dtype)
    radius = torch.rand((original.shape[0],) + (1,) * (original.dim() - 1), generator=generator, device=original.device, dtype=original.dtype)
    adversarial = original + epsilon * radius * direction / _per_example_norm(direction).clamp_min(1e-12)
    for _ in range(steps):
        if bounds is not None:
            adversarial = adversarial.clamp(*bounds)
        gradient = _input_gradient(loss_fn, adversarial)
        adversarial = adversarial + step * gradient / _per_example_norm(gradient).clamp_min(1e-12)
        delta = adversarial - original
        adversarial = original + delta * (epsilon / _per_example_norm(delta).clamp_min(1e-12)).clamp(max=1.0)
    return adversarial.clamp(*bounds) if bounds is not None else adversarial


def patch_attack(loss_fn: LossFn, x: torch.Tensor, size: int, step: float, steps: int, *, bounds: tuple[float, float] = (0.0, 1.0),
                 generator: torch.Generator | None = None, position: tuple[int, int] | None = None) -> torch.Tensor:
    """An adversarial patch: a ``size x size`` square of each image whose content is free within
    ``bounds`` (``steps`` sign-gradient steps of size ``step``, starting from the image); every value
    outside the square is unchanged. The square sits at ``position = (top, left)`` in every image (a
    sticker at a fixed place), or, with ``position=None``, at a uniformly drawn place per image.

    Input: ``x : [B, C, H, W]``; ``size`` in pixels (``1 <= size <= min(H, W)``); ``step`` in the
    units of ``x``; ``position`` in pixels, the square inside the image. Output: ``x' : [B, C, H, W]`` (detached).
    """
    if x.dim() != 4:
        raise InputError(f"patch_attack needs images [B, C, H, W], got shape {tuple(x.shape)}")
    height, width = x.shape[-2:]
    if not 1 <= size <= min(height, width):
        raise InputError(f"patch size must be in [1, {min(height, width)}] pixels for {height}x{width} images, got {size}")
    if steps < 1 or step <= 0:
        raise InputError(f"need steps >= 1 and step > 0, got steps={steps}, step={step}")
    original = x.detach()
    count = original.shape[0]
    if position is None:
        top = torch.randint(0, height - size + 1, (count,), generator=generator, device=original.device)
        left = torch.randint(0, width - size + 1, (count,), generator=generator, device=original.device)
    else:
        if not (0 <= position[0] <= height - size and 0 <= position[1] <= width - size):
            raise InputError(f"a {size}x{size} patch at (top, left) = {tuple(position)} leaves the {height}x{width} image: top <= {height - size}, left <= {width - size}")
        top = torch.full((count,), int(position[0]), device=original.device)
        left = torch.full((count,), int(position[1]), device=original.device)
    rows = torch.arange(height, device=original.device)
    cols = torch.arange(width, device=original.device)
    inside_rows = (rows[None] >= top[:, None]) & (rows[None] < top[:, None] + size)
    inside_cols = (cols[None] >= left[:, None]) & (cols[None] < left[:, None] + size)
    mask = (inside_rows[:, :, None] & inside_cols[:, None, :])[:, None].to(original.dtype)
    adversarial = original.clone()
    for _ in range(steps):
        adversarial = (adversarial + step * mask * _input_gradient(loss_fn, adversarial).sign()).clamp(*bounds)
    return original * (1 - mask) + adversarial * mask


def universal_receiver_noise(
    loss_fn: LossFn,
    received: torch.Tensor,
    attacker_channels: torch.Tensor,
    epsilon: float,
    step: float,
    steps: int,
    weight: float = 1.0,
) -> torch.Tensor:
    """Sample-independent semantic noise at the receiver (Algorithm 1).

    Input
    -----
    loss_fn : callable
        ``loss_fn(y [N, Nr, T] complex) -> [N]``: the receiver's task loss given what it receives.
    received : [N, Nr, T], complex
        Received signals without semantic noise, ``x~ = H_t x + n``, for N collected samples.
    attacker_channels : [N, Nr, Nt], complex
        Channel realizations ``H_a`` drawn from the attacker-receiver channel statistics.
    epsilon : float
        L2 norm of the output perturbation (its total energy is ``epsilon^2``).
    step, steps : float, int
        ``alpha`` and ``K`` of the per-sample iterations (need ``K alpha > epsilon``).
    weight : float
        ``rho``, the weight of each new sample in the running average.

    Output
    ------
    dx : [Nt, T], complex
        The attacker's transmitted perturbation, ``||dx||_2 = epsilon``; the receiver sees
        ``H_a dx`` added (eq. 8).

    Note
    ----
    Per sample ``n`` and iteration ``k``: ``d = H_a^H g / ||H_a^H g||`` with ``g`` the gradient of the
    loss at ``x~_k`` (``H_a^H`` steers the perturbation so the channel delivers the most power),
    ``x~_{k+1} = x~_k + alpha H_a d``, ``delta_{k+1} = delta_k + alpha d``. Then, sample by sample,
    ``dx <- epsilon normalize(dx + rho delta_K / ||delta_K||)``. The per-sample iterations run in
    parallel over the N samples.
    """
    _check_budget(epsilon)
    if received.dim() != 3 or not received.is_complex():
        raise InputError(f"received must be complex [N, Nr, T], got {received.dtype} shape {tuple(received.shape)}")
    if attacker_channels.dim() != 3 or attacker_channels.shape[:2] != received.shape[:2] or not attacker_channels.is_complex():
        raise InputError(f"attacker_channels must be complex [N, Nr, Nt] with N, Nr = {tuple(received.shape[:2])}, got {attacker_channels.dtype} shape {tuple(attacker_channels.shape)}")
    if steps < 1 or steps * step <= epsilon:
        raise InputError(f"need steps >= 1 and steps * step > epsilon (K alpha > epsilon), got steps={steps}, step={step}, epsilon={epsilon}")
    hermitian = attacker_channels.conj().transpose(1, 2)
    current = received.detach()
    delta = torch.zeros(received.shape[0], attacker_channels.shape[2], received.shape[2], dtype=received.dtype, device=received.device)
    for _ in range(steps):
        direction = hermitian @ _input_gradient(loss_fn, current)
        direction = direction / direction.flatten(1).norm(dim=1).clamp_min(1e-30)[:, None, None]
        current = current + step * (attacker_channels @ direction)
        delta = delta + step * direction
    perturbation = torch.zeros_like(delta[0])
    for sample in delta:
        perturbation = perturbation + weight * sample / sample.norm().clamp_min(1e-30)
        perturbation = epsilon * perturbation / perturbation.norm().clamp_min(1e-30)
    return perturbation


def signal_to_semantic_noise_db(signal: torch.Tensor, perturbation: torch.Tensor) -> float:
    """Signal-to-semantic-noise ratio in dB: ``10 log10(mean |signal|^2 / mean |perturbation|^2)``,
    powers per element of each tensor (e.g. transmitted symbols and the attacker's ``dx``)."""
    return float(10 * torch.log10(signal.abs().pow(2).mean() / perturbation.abs().pow(2).mean()))


class AdversarialWeightPerturbation:
    """Adversarial weight perturbation (problem P3, Algorithm 2 step 3; Wu et al., 2020).

    :meth:`perturb` takes one ascent step on the loss with respect to the weights and adds
    ``nu_l = gamma ||theta_l|| g_l / ||g_l||`` to every perturbed parameter ``theta_l`` (so
    ``||nu_l|| = gamma ||theta_l||``, the constraint of eq. 10b with p = 2, per layer); :meth:`restore`
    removes it exactly. Parameters with fewer than 2 dimensions (biases, norms) are left alone.

    Parameters: ``model`` (its trainable parameters are perturbed), ``gamma`` (relative size, >= 0).
    """

    def __init__(self, model: nn.Module, gamma: float):
        _check_budget(gamma, "gamma")
        self.model, self.gamma = model, gamma
        self.perturbations: list[tuple[nn.Parameter, torch.Tensor]] = []

    def perturb(self, loss: Callable[[], torch.Tensor]) -> None:
        """Add the perturbation found by one ascent step on ``loss()`` (a scalar from the current model)."""
        if self.perturbations:
            raise RuntimeError("the weights are already perturbed: call restore() first")
        parameters = [p for p in self.model.parameters() if p.requires_grad and p.dim() > 1]
        with torch.enable_grad():
            gradients = torch.autograd.grad(loss(), parameters, allow_unused=True)
        with torch.no_grad():
            for parameter, gradient in zip(parameters, gradients):
                if gradient is None or float(gradient.norm()) == 0:
                    continue
                nu = self.gamma * parameter.norm() * gradient / gradient.norm()
                parameter.add_(nu)
                self.perturbations.append((parameter, nu))

    def restore(self) -> None:
        """Remove the perturbation (the weights return to ``theta`` up to float rounding)."""
        with torch.no_grad():
            for parameter, nu in self.perturbations:
                parameter.sub_(nu)
        self.perturbations = []


def adversarial_training_step(
    loss_fn: LossFn,
    x: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    attack: Callable[[LossFn, torch.Tensor], torch.Tensor],
    awp: AdversarialWeightPerturbation | None = None,
) -> float:
    """One step of adversarial training: P2 (``awp=None``) or P3 (Algorithm 2).

    (1) ``x' = attack(loss_fn, x)`` with the weights fixed; (2) with AWP, perturb the weights by one
    ascent step on the loss of ``x'``; (3) gradient of the mean loss of ``x'`` at the (perturbed)
    weights, weights restored, optimizer step. ``loss_fn`` closes over the model and the targets.
    Returns the mean adversarial loss.
    """
    adversarial = attack(loss_fn, x).detach()
    if awp is not None:
        awp.perturb(lambda: _per_example_loss(loss_fn, adversarial).mean())
    optimizer.zero_grad(set_to_none=True)
    loss = _per_example_loss(loss_fn, adversarial).mean()
    loss.backward()
    if awp is not None:
        awp.restore()
    optimizer.step()
    return float(loss.detach())


ATTACKS = ("none", "fgsm", "ifgsm", "pgd", "pgd-l2", "patch")
"""The attack kinds of :func:`from_spec` (and of ``digisem attack --attack``)."""

Attack = Callable[..., torch.Tensor]
"""``attack(loss_fn, images, generator=None) -> images'``."""


def from_spec(spec: dict | None) -> Attack | None:
    """The one attack factory -> ``attack(loss_fn, images, generator=None) -> images'``; None for kind
    ``none`` (or no spec). Kinds and their keys (budgets and steps in the units of images in [0, 1]):

    - ``fgsm``: ``epsilon`` (L-infinity);
    - ``ifgsm``, ``pgd``: ``epsilon`` (L-infinity), ``step``, ``steps``;
    - ``pgd-l2``: ``epsilon`` (L2 over an image's values), ``step`` (L2 length), ``steps``;
    - ``patch``: ``size`` (pixels of the square), ``step``, ``steps``, optional ``top`` and ``left``
      (pixels: the same place in every image; without them, a random place per image).

    Example
    -------
    >>> attack = from_spec({"kind": "ifgsm", "epsilon": 0.016, "step": 0.004, "steps": 5})
    """
    if spec is None or spec.get("kind", "none") == "none":
        return None
    kind = spec["kind"]
    if kind not in ATTACKS:
        raise InputError(f"unknown attack {kind!r}: use one of {ATTACKS}")
    if kind == "patch":
        if spec.get("size") is None or spec.get("step") is None or spec.get("steps") is None:
            raise InputError(f"attack 'patch' needs size (pixels), step and steps, got {spec}")
        size, step, steps = int(spec["size"]), float(spec["step"]), int(spec["steps"])
        if (spec.get("top") is None) != (spec.get("left") is None):
            raise InputError(f"a fixed patch needs both top and left (pixels), got {spec}")
        position = None if spec.get("top") is None else (int(spec["top"]), int(spec["left"]))
        return lambda loss_fn, x, generator=None: patch_attack(loss_fn, x, size, step, steps, generator=generator, position=position)
    if spec.get("epsilon") is None:
        norm = "L2" if kind == "pgd-l2" else "L-infinity"
        raise InputError(f"attack {kind!r} needs epsilon (the {norm} budget on images in [0, 1]), got {spec}")
    epsilon = float(spec["epsilon"])
    if kind == "fgsm":
        return lambda loss_fn, x, generator=None: fgsm(loss_fn, x, epsilon)
    if spec.get("step") is None or spec.get("steps") is None:
        raise InputError(f"attack {kind!r} needs step and steps, got {spec}")
    step, steps = float(spec["step"]), int(spec["steps"])
    if kind == "ifgsm":
        return lambda loss_fn, x, generator=None: iterative_fgsm(loss_fn, x, epsilon, step, steps)
    if kind == "pgd-l2":
        return lambda loss_fn, x, generator=None: pgd_l2(loss_fn, x, epsilon, step, steps, generator=generator)
    return lambda loss_fn, x, generator=None: pgd(loss_fn, x, epsilon, step, steps, generator=generator)
