"""Digitizers: continuous features <-> what goes on the wire.

:class:`ScalarQuantizer` is AMP-SC's rounding quantizer (paper Sec. II-A, eqs. 1-2, 10). Turning its
integers into bits is the link's job (:func:`digisem.link.int_to_bits`, MSB first, natural binary).
:class:`LearnedConstellation` is JCM's: the encoder picks a constellation point per channel use with
a straight-through Gumbel-softmax, so the payload is complex symbols, not bits.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .link.errors import InputError

MAX_SCALAR_BITS = 16


class ScalarQuantizer(nn.Module):
    """Uniform rounding quantizer to ``2**num_bits`` integer levels (AMP-SC, the authors' code).

    Parameters
    ----------
    num_bits : int
        Bits per value ``b`` (AMP-SC uses 2 or 4), 1 to 16.

    Note
    ----
    Feature units: :meth:`bounded` maps the raw encoder output to ``tanh(x) * 2^b / 2 + 0.5``, in
    ``(-2^(b-1) + 0.5, 2^(b-1) + 0.5)``; rounding gives the integer levels ``-2^(b-1) + 1 ... 2^(b-1)``
    (b = 4: bounded in (-7.5, 8.5), levels -7 ... 8). On the wire the levels are shifted by
    ``offset = 2^(b-1) - 1`` to ``0 ... 2^b - 1`` (b = 4: +7, payload 0 ... 15). Training replaces
    the rounding with additive noise (:meth:`relaxed`, eq. 10); there is no straight-through estimator.

    Calling the module is :meth:`quantize`. As a digitizer (:mod:`digisem.systems.base`): payload
    ``"integers"`` of ``bits_per_value = num_bits`` bits; :meth:`to_payload` is :meth:`quantize`,
    :meth:`from_payload` is :meth:`dequantize`.

    Example
    -------
    >>> q = ScalarQuantizer(4)
    >>> q.quantize(torch.tensor([-7.4, 0.0, 8.4]))
    tensor([ 0,  7, 15])
    """

    def __init__(self, num_bits: int):
        super().__init__()
        if not isinstance(num_bits, int) or isinstance(num_bits, bool) or not 1 <= num_bits <= MAX_SCALAR_BITS:
            raise InputError(f"num_bits must be an int in [1, {MAX_SCALAR_BITS}], got {num_bits!r}")
        self.num_bits = num_bits
        self.num_levels = 1 << num_bits
        self.offset = (1 << (num_bits - 1)) - 1

    payload_kind = "integers"

    @property
    def bits_per_value(self) -> int:
        """Bits per payload integer, ``b``."""
        return self.num_bits

    def to_payload(self, features: torch.Tensor) -> torch.Tensor:
        """Digitizer protocol: :meth:`quantize`."""
        return self.quantize(features)

    def from_payload(self, payload: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Digitizer protocol: :meth:`dequantize`."""
        return self.dequantize(payload, dtype)

    @property
    def bounds(self) -> tuple[float, float]:
        """Open interval ``(low, high)`` of :meth:`bounded`, in feature units (b = 4: (-7.5, 8.5))."""
        half = self.num_levels / 2
        return -half + 0.5, half + 0.5

    def extra_repr(self) -> str:
        return f"num_bits={self.num_bits}"

    def bounded(self, x: torch.Tensor) -> torch.Tensor:
        """Bound raw encoder outputs: ``x : [B, ...]`` -> ``tanh(x) * 2^b / 2 + 0.5``, same shape, feature units."""
        return torch.tanh(x) * (self.num_levels / 2) + 0.5

    def quantize(self, features: torch.Tensor) -> torch.Tensor:
        """Round and shift to the payload.

        Input: ``features : [B, ...]`` float, feature units (normally :meth:`bounded` outputs).
        Output: ``payload : [B, ...], torch.int64`` in ``[0, 2^b - 1]``: ``round(features) + offset``,
        saturated at both ends (float32 ``tanh`` reaches exactly -1, whose bound rounds to the level
        below the lowest).
        """
        if not features.dtype.is_floating_point:
            raise TypeError(f"features must be floating point, got {features.dtype}")
        levels = torch.round(features.detach()).to(torch.int64) + self.offset
        return levels.clamp_(0, self.num_levels - 1)

    def dequantize(self, payload: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Back to feature units: ``payload : [B, ...]`` integers in ``[0, 2^b - 1]`` -> ``payload - offset`` as ``dtype``."""
        if payload.dtype.is_floating_point or payload.dtype.is_complex or payload.dtype == torch.bool:
            raise TypeError(f"payload must have an integer dtype, got {payload.dtype}")
        if payload.numel() and (int(payload.min()) < 0 or int(payload.max()) >= self.num_levels):
            raise InputError(
                f"payload must lie in [0, {self.num_levels - 1}] for {self.num_bits} bits; "
                f"got min {int(payload.min())}, max {int(payload.max())}"
            )
        return (payload - self.offset).to(dtype)

    def relaxed(self, features: torch.Tensor, alpha: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
        """Differentiable stand-in for rounding (eq. 10): ``features + alpha * N(0, 1)``.

        Input: ``features : [B, ...]`` float, feature units (bounded). ``alpha`` : noise standard
        deviation in feature units (paper: 0.5). ``generator`` : on ``features``' device.
        Output: same shape and dtype; gradients flow to ``features``.
        """
        if alpha < 0:
            raise InputError(f"alpha must be >= 0, got {alpha}")
        noise = torch.randn(features.shape, generator=generator, device=features.device, dtype=features.dtype)
        return features + alpha * noise

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.quantize(features)


LEARNED_ORDERS = (2, 4, 16, 64, 256)


class LearnedConstellation(nn.Module):
    """JCM's digitizer: per real dimension, a straight-through Gumbel-softmax over ``K`` PAM levels.

    Parameters
    ----------
    order : int
        ``M``: 2 (BPSK, ``K = 2`` levels on the real axis only), or a square QAM 4, 16, 64, 256
        (``K = sqrt(M)`` levels on each of the real and imaginary axes).
    temperature : float
        Gumbel-softmax temperature (JCM: 1.5).

    Input
    -----
    logits : [B, d, K], float
        Scores of the ``K`` levels for each real dimension; ``d = 2n`` for QAM, ``n`` for BPSK.
    generator : torch.Generator, optional
        Drives the Gumbel noise (training only).

    Output
    ------
    symbols : [B, n], complex64
        Points of the unit-average-energy M-QAM (or BPSK) grid: levels ``(-(K-1), ..., -1, 1, ..., K-1)
        / sqrt(2 (M - 1) / 3)`` (BPSK: +-1). In training mode each level is a Gumbel-softmax sample
        with hard one-hot values forward and the softmax gradient backward; in eval mode the most
        likely level (argmax of the logits, no noise).

    Note
    ----
    As a digitizer: payload ``"symbols"`` (the chosen points, before power normalization),
    ``bits_per_value = log2 M`` label bits per symbol; :meth:`to_payload` is the call and
    :meth:`from_payload` returns the received symbols unchanged (the decoder reads symbols).

    Example
    -------
    >>> constellation = LearnedConstellation(16).eval()
    >>> constellation(torch.randn(1, 8, 4)).shape
    torch.Size([1, 4])
    """

    def __init__(self, order: int, temperature: float = 1.5):
        super().__init__()
        if order not in LEARNED_ORDERS:
            raise InputError(f"unknown learned constellation order {order!r}: use one of {LEARNED_ORDERS} (2 = BPSK, else square QAM)")
        if not temperature > 0:
            raise InputError(f"temperature must be > 0, got {temperature}")
        self.order = order
        self.temperature = float(temperature)
        self.num_levels = 2 if order == 2 else math.isqrt(order)
        self.real_dims_per_symbol = 1 if order == 2 else 2
        energy = 1.0 if order == 2 else 2 * (order - 1) / 3
        odd = torch.arange(-(self.num_levels - 1), self.num_levels, 2, dtype=torch.float32)
        self.register_buffer("levels", odd / math.sqrt(energy), persistent=False)

    payload_kind = "symbols"

    @property
    def bits_per_value(self) -> int:
        """Label bits per symbol, ``log2 M``."""
        return self.order.bit_length() - 1

    def to_payload(self, logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Digitizer protocol: the chosen points ``[B, n], complex64`` (the call)."""
        return self(logits, generator)

    def from_payload(self, symbols: torch.Tensor) -> torch.Tensor:
        """Digitizer protocol: received symbols ``[B, n]`` are what the decoder reads (unchanged)."""
        return symbols

    def extra_repr(self) -> str:
        return f"order={self.order}, levels_per_dim={self.num_levels}, temperature={self.temperature}"

    def real_dims(self, channel_uses: int) -> int:
        """Real dimensions ``d`` whose logits the encoder must produce for ``channel_uses`` symbols."""
        return channel_uses * self.real_dims_per_symbol

    def one_hot(self, logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Level choices ``[B, d, K]`` (one-hot values; straight-through softmax gradient in training)."""
        if logits.dim() != 3 or logits.shape[-1] != self.num_levels:
            raise InputError(f"logits must be [B, d, {self.num_levels}] for order {self.order}, got shape {tuple(logits.shape)}")
        if not self.training:
            return nn.functional.one_hot(logits.argmax(-1), self.num_levels).to(logits.dtype)
        uniform = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
        gumbel = -torch.log((-torch.log(uniform.clamp_min(1e-20))).clamp_min(1e-20))
        soft = torch.softmax((logits + gumbel) / self.temperature, dim=-1)
        hard = nn.functional.one_hot(soft.argmax(-1), self.num_levels).to(logits.dtype)
        return hard - soft.detach() + soft

    def forward(self, logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        values = self.one_hot(logits, generator) @ self.levels.to(logits.dtype)
        if self.real_dims_per_symbol == 1:
            return torch.complex(values, torch.zeros_like(values))
        if values.shape[1] % 2:
            raise InputError(f"QAM needs an even number of real dimensions, got {values.shape[1]}")
        return torch.view_as_complex(values.reshape(values.shape[0], -1, 2).contiguous())

    def points(self) -> torch.Tensor:
        """All ``M`` constellation points, ``[M], complex64`` (real-axis levels for BPSK)."""
        if self.real_dims_per_symbol == 1:
            return torch.complex(self.levels, torch.zeros_like(self.levels))
        return torch.complex(self.levels[:, None].expand(-1, self.num_levels), self.levels[None, :].expand(self.num_levels, -1)).reshape(-1)


class VectorQuantizer(nn.Module):
    """A learned codebook shared by transmitter and receiver (the masked VQ-VAE, eqs. 11-12).

    Parameters
    ----------
    codebook_size : int
        J, the number of basis vectors (the paper: 256, i.e. 8 bits per index).
    dim : int
        D, the dimension of each basis vector.
    beta : float
        Weight of the commitment term of eq. 12 (0.25 in the authors' code).

    Input: ``features : [..., D]`` float, the encoder's continuous features ``z_e``.
    Output: :meth:`forward` returns ``(quantized [..., D], indices [...] int64, losses)``: the nearest
    basis vectors (eq. 11) with the straight-through gradient (the decoder's gradient is copied to
    ``z_e``), their indices in ``[0, J)`` (``bits_per_index`` bits each on the wire), and the
    ``codebook`` (``||ng[z_e] - e||^2``, trains the basis vectors) and ``commitment``
    (``beta ||z_e - ng[e]||^2``, trains the encoder) terms of eq. 12 as means over all entries.

    Codebook collapse (a few basis vectors take every feature, the rest never move) is what eq. 12
    alone gives a ViT trained from scratch: measured, 5-14 of 256 codes in use after 100 batches and
    chance accuracy. So in training mode the codebook is first set to features of the first batch
    (data-dependent initialization), and every ``restart_every`` training calls each basis vector
    that no feature chose since the last check is moved onto a random feature of the current batch
    (dead-code restart, as in Jukebox and SoundStream). Eval mode never changes the codebook.

    As a digitizer: payload ``"integers"`` of ``bits_per_value = log2 J`` bits; :meth:`to_payload`
    is :meth:`indices`, :meth:`from_payload` is :meth:`lookup`.
    """

    payload_kind = "integers"

    def __init__(self, codebook_size: int = 256, dim: int = 32, beta: float = 0.25, restart_every: int = 20):
        super().__init__()
        if codebook_size < 2 or dim < 1 or beta < 0 or restart_every < 0:
            raise InputError(f"need codebook_size >= 2, dim >= 1, beta >= 0, restart_every >= 0; got {codebook_size}, {dim}, {beta}, {restart_every}")
        if codebook_size & (codebook_size - 1):
            raise InputError(f"codebook_size J = {codebook_size} is not a power of two: indices travel as log2(J)-bit words, and every word must name a basis vector")
        self.codebook = nn.Parameter(torch.empty(codebook_size, dim).uniform_(-1 / codebook_size, 1 / codebook_size))
        self.beta = float(beta)
        self.bits_per_index = codebook_size.bit_length() - 1
        self.restart_every = restart_every
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("usage", torch.zeros(codebook_size))
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def _maintain(self, features: torch.Tensor) -> None:
        """Training-time codebook care: data-dependent init, then dead-code restarts (see the class note)."""
        flat = features.detach().reshape(-1, features.shape[-1])
        size = self.codebook.shape[0]
        if not bool(self.initialized):
            chosen = torch.randint(flat.shape[0], (size,), device=flat.device)
            self.codebook.copy_(flat[chosen] + 0.01 * flat.std() * torch.randn_like(self.codebook))
            self.initialized.fill_(True)
            return
        self.usage += torch.bincount(self.indices(features).reshape(-1), minlength=size).to(self.usage.dtype)
        self.calls += 1
        if self.restart_every and int(self.calls) % self.restart_every == 0:
            dead = self.usage == 0
            if bool(dead.any()):
                chosen = torch.randint(flat.shape[0], (int(dead.sum()),), device=flat.device)
                self.codebook[dead] = flat[chosen] + 0.01 * flat.std() * torch.randn_like(self.codebook[dead])
            self.usage.zero_()

    @property
    def bits_per_value(self) -> int:
        """Bits per index, ``log2 J``."""
        return self.bits_per_index

    def to_payload(self, features: torch.Tensor) -> torch.Tensor:
        """Digitizer protocol: :meth:`indices`."""
        return self.indices(features)

    def from_payload(self, indices: torch.Tensor) -> torch.Tensor:
        """Digitizer protocol: :meth:`lookup`."""
        return self.lookup(indices)

    def extra_repr(self) -> str:
        return f"codebook_size={self.codebook.shape[0]}, dim={self.codebook.shape[1]}, beta={self.beta}, bits_per_index={self.bits_per_index}"

    def _check(self, features: torch.Tensor) -> None:
        if not features.dtype.is_floating_point or features.dim() < 1 or features.shape[-1] != self.codebook.shape[1]:
            raise InputError(f"features must be float [..., {self.codebook.shape[1]}], got {features.dtype} shape {tuple(features.shape)}")

    def indices(self, features: torch.Tensor) -> torch.Tensor:
        """Eq. 11: index of the nearest basis vector (Euclidean), ``[..., D] -> [...]`` int64."""
        self._check(features)
        flat = features.detach().reshape(-1, features.shape[-1])
        distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.detach().T + self.codebook.detach().pow(2).sum(1)[None, :]
        return distances.argmin(1).reshape(features.shape[:-1])

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Basis vectors of ``indices [...]`` (integers in ``[0, J)``): ``[..., D]``."""
        if indices.dtype.is_floating_point or indices.dtype.is_complex:
            raise TypeError(f"indices must be integers, got {indices.dtype}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook.shape[0]):
            raise InputError(f"indices must lie in [0, {self.codebook.shape[0] - 1}], got min {int(indices.min())}, max {int(indices.max())}")
        return self.codebook[indices]

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        if self.training and features.requires_grad:
            self._maintain(features)
        indices = self.indices(features)
        basis = self.lookup(indices)
        losses = {"codebook": (features.detach() - basis).pow(2).mean(), "commitment": self.beta * (features - basis.detach()).pow(2).mean()}
        quantized = features + (basis - features).detach()
        return quantized, indices, losses

    def orthogonality(self) -> torch.Tensor:
        """The codebook term of Sec. IV-B3: squared cosine similarities between distinct basis vectors,
        ``||E^T E - I||_F^2 / (J (J - 1))`` for the normalized codebook ``E`` (0 when the basis vectors
        are mutually orthogonal; the diagonal of ``E^T E`` is 1 whatever the codebook, so dropping it
        changes only a constant of the paper's ``||E^T E||``)."""
        normalized = nn.functional.normalize(self.codebook, dim=1)
        gram = normalized @ normalized.T
        size = gram.shape[0]
        return (gram - torch.eye(size, device=gram.device, dtype=gram.dtype)).pow(2).sum() / (size * (size - 1))


class AnalogSymbols(nn.Module):
    """The analog digitizer of JSCC systems: real features paired into complex symbols, each example
    scaled to unit average energy per symbol.

    Input (:meth:`to_payload`): ``features : [B, ...]`` float with an even number of values per
    example. Output: ``symbols : [B, n], complex64``, ``n`` = half the values, ``mean |s|^2 = 1`` per
    example (differentiable). :meth:`from_payload` takes received symbols ``[B, n]`` and a feature
    shape ``[B, ...]`` back to real features (consecutive pairs are the real and imaginary parts).

    Example
    -------
    >>> AnalogSymbols().to_payload(torch.randn(2, 8, 4, 4)).shape
    torch.Size([2, 64])
    """

    payload_kind = "symbols"
    bits_per_value = None

    def to_payload(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, ...]`` real features -> ``[B, n]`` unit-energy complex symbols."""
        if not features.dtype.is_floating_point or features.dim() < 2 or features[0].numel() % 2:
            raise InputError(f"analog features must be float [B, ...] with an even number of values per example, got {features.dtype} shape {tuple(features.shape)}")
        pairs = features.float().reshape(features.shape[0], -1, 2).contiguous()
        symbols = torch.view_as_complex(pairs)
        power = symbols.abs().pow(2).mean(-1, keepdim=True)
        if bool((power == 0).any()):
            raise InputError("an example has all-zero features: cannot normalize its power")
        return symbols / power.sqrt()

    def from_payload(self, symbols: torch.Tensor, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
        """``[B, n]`` complex symbols -> real features of ``shape`` (``[B, ...]``, ``2n`` values per example)."""
        return torch.view_as_real(symbols).reshape(shape)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.to_payload(features)
