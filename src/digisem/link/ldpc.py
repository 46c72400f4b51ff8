"""5G NR LDPC channel coding (3GPP TS 38.212) with rate matching.

Encoding, rate matching (puncturing of the first ``2Z`` systematic bits, shortening by filler
bits) and the parity-check matrix come from Sionna's
:class:`~sionna.phy.fec.ldpc.LDPC5GEncoder`. Two decoders run on the graph Sionna's
:class:`~sionna.phy.fec.ldpc.LDPC5GDecoder` builds (degree-1 punctured parity nodes pruned):

- ``"sionna"``: Sionna's own flooding boxplus-phi decoder (the reference);
- ``"fast"``: the same flooding sum-product schedule, written for throughput (tanh rule in a
  batch-last layout, filler bits dropped as known zeros, per-codeword early stopping once every
  parity check holds). It matches Sionna's coded BER; see :class:`LDPC5GCode`.
- ``"numba"``: the ``"fast"`` decoder's algorithm compiled with numba (:mod:`._ldpc_kernel`), for
  CPU tensors; the default when numba is installed (``pip install 'digisem[fast]'``).

LLRs follow the :mod:`digisem.link` convention, ``LLR = ln P(b=1 | y) / P(b=0 | y)``.
"""

from __future__ import annotations

import math
import re
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
import torch
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from torch import nn

from .errors import InputError

try:
    from . import _ldpc_kernel
except ImportError:  # numba missing or unusable: the pure-torch decoder is the default
    _ldpc_kernel = None

DECODERS = ("numba", "fast", "sionna")
DEFAULT_DECODER = "fast" if _ldpc_kernel is None else "numba"
LLR_MAX = 20.0
"""Clipping of channel LLRs and messages, as Sionna's decoders (``llr_max=20``)."""

_SPEC = re.compile(r"ldpc-(\d+)/(\d+)")
_ALLOWED = "12 <= k <= 8448, n <= 121344 and 1/5 <= k/n <= 0.95"
# Edge messages per chunk of codewords decoded together ([edges, chunk] tensors of ~4 MB in float32):
# larger chunks fall out of cache, smaller ones pay per-op overhead (k=512, n=1024: 277 codewords).
_CHUNK_MESSAGES = 1 << 20
# Converged codewords leave the batch once they are at least this fraction of it.
_COMPACT_FRACTION = 0.25
# Added to tanh(Q/2)/2 so that an exact zero (Q = 0) becomes a tiny positive value; see _step.
_TINY = 1e-12


class LDPC5GCode(nn.Module):
    r"""5G NR LDPC code (TS 38.212) with rate matching: ``k`` information bits -> ``n`` coded bits.

    Parameters
    ----------
    k : int
        Information bits per codeword, ``12 <= k <= 8448``.
    n : int
        Coded bits per codeword after rate matching, with ``1/5 <= k/n <= 0.95``.
    num_iter : int
        Belief-propagation iterations (flooding schedule), default 20.
    decoder : str
        ``"numba"`` (the default when numba is importable), ``"fast"`` (pure torch; the default
        otherwise) or ``"sionna"`` (Sionna's :class:`LDPC5GDecoder`, boxplus-phi).

    Input
    -----
    bits : [..., k], torch.float32
        To :meth:`encode`; values {0, 1}.
    llr : [..., n], torch.float32
        To :meth:`decode`; ``ln P(b=1|y) / P(b=0|y)`` (the :mod:`digisem.link` convention).
    bits, p : [..., n], torch.float32 and float
        To :meth:`decode_hard`: received bits of a binary symmetric channel, crossover ``p``.

    Output
    ------
    : [..., n], torch.float32
        From :meth:`encode`: the rate-matched codewords.
    : [..., k], torch.float32
        From :meth:`decode` and :meth:`decode_hard`: hard information bits {0, 1}.

    Any floating dtype works; outputs take the input's dtype and device.

    Note
    ----
    Both decoders run flooding sum-product on Sionna's pruned graph. Channel LLRs, variable-to-check
    messages ``Q`` and check-to-variable messages ``R`` are clipped to ``LLR_MAX`` = 20 as in Sionna.
    The fast decoder computes the check update with the tanh rule,

    .. math::
        R_{j \to i} = 2 \operatorname{atanh} \prod_{i' \in \mathcal{N}(j) \setminus i}
        \tanh\left(\frac{Q_{i' \to j}}{2}\right),

    with ``tanh(Q/2) = 2 sigmoid(Q) - 1`` and the exclusive product as the check's product divided
    by the own term. Filler bits are known zeros, so they leave the graph (Sionna feeds them as
    LLR 20 instead). A codeword stops iterating once its hard decisions satisfy every parity check;
    Sionna always runs ``num_iter`` iterations. Hard decisions follow Sionna: bit 1 where the
    posterior LLR is >= 0 (convention above). On the same LLRs the two decoders give the same BER
    and BLER up to Monte-Carlo error (``benchmarks/ldpc_throughput.py`` measures both).

    The numba decoder runs the fast decoder's algorithm (same graph, rule, clipping and stopping) in
    float32 on CPU tensors, in parallel over codewords on ``torch.get_num_threads()`` threads; its
    messages differ from the fast decoder's by float32 rounding only (see
    :func:`._ldpc_kernel.decode_range`). It stops each codeword as soon as its parity checks hold,
    where the fast decoder may keep a converged codeword iterating until a quarter of its batch has
    converged, so its bits never depend on the batch. Its first call compiles the kernel (seconds;
    numba caches it on disk). Tensors on other devices, and ``num_iter = 0``, take the fast decoder.

    Example
    -------
    >>> code = LDPC5GCode.from_spec("ldpc-1/2", k=512)
    >>> bits = torch.randint(0, 2, (8, 512)).float()
    >>> llr = 20.0 * (2.0 * code.encode(bits) - 1.0)
    >>> torch.equal(code.decode(llr), bits)
    True
    """

    def __init__(self, k: int, n: int, num_iter: int = 20, decoder: str = DEFAULT_DECODER):
        super().__init__()
        for name, value in (("k", k), ("n", n), ("num_iter", num_iter)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if num_iter < 0:
            raise InputError(f"num_iter must be >= 0, got {num_iter}")
        if decoder not in DECODERS:
            raise InputError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        if decoder == "numba" and _ldpc_kernel is None:
            raise InputError("decoder='numba' needs numba, which is not installed or not importable: pip install 'digisem[fast]', or use decoder='fast'")
        k, n = int(k), int(n)
        try:
            encoder = LDPC5GEncoder(k, n, device="cpu", check_input=False)
        except ValueError as err:
            raise InputError(f"invalid 5G NR LDPC code k={k}, n={n} (rate {k / max(n, 1):.3f}): {err} Allowed: {_ALLOWED}.") from err
        self.encoder = encoder
        self.num_iter = num_iter
        self.decoder = decoder
        reference = LDPC5GDecoder(encoder, num_iter=num_iter, hard_out=True, return_infobits=True, device="cpu")
        if decoder == "sionna":
            self.sionna_decoder = reference
        else:
            self.bp = _FloodingDecoder(reference.pcm, encoder)
            self.kernel = _NumbaDecoder(self.bp) if decoder == "numba" else None

    @classmethod
    def from_spec(cls, spec: str, k: int = 512, **kwargs) -> LDPC5GCode:
        """Build a code from a name such as ``"ldpc-1/2"``, ``"ldpc-2/3"`` or ``"ldpc-1/3"``.

        ``n = round(k / rate)``; ``kwargs`` go to the constructor (``num_iter``, ``decoder``).
        """
        match = _SPEC.fullmatch(spec.strip().lower()) if isinstance(spec, str) else None
        if match is None or int(match.group(1)) == 0 or int(match.group(2)) == 0:
            raise InputError(f"unknown code spec {spec!r}: use 'ldpc-<num>/<den>', e.g. 'ldpc-1/2', 'ldpc-2/3' or 'ldpc-1/3'")
        return cls(k, round(k * int(match.group(2)) / int(match.group(1))), **kwargs)

    @property
    def k(self) -> int:
        """Information bits per codeword."""
        return self.encoder.k

    @property
    def n(self) -> int:
        """Coded bits per codeword."""
        return self.encoder.n

    @property
    def rate(self) -> float:
        """Code rate ``k / n``."""
        return self.k / self.n

    def encode(self, bits: torch.Tensor) -> torch.Tensor:
        """Encode and rate-match with Sionna's :class:`LDPC5GEncoder`.

        Input
        -----
        bits : [..., k], torch.float32
            Information bits {0, 1} (any floating dtype).

        Output
        ------
        : [..., n], dtype and device of ``bits``
            Coded bits: systematic bits from ``2Z`` on, then parity (TS 38.212 rate matching).
        """
        _check_blocks(bits, "bits", self.k, "k")
        if not ((bits == 0) | (bits == 1)).all():
            raise InputError("bits must contain only 0 and 1")
        return self.encoder(bits).to(bits.dtype)

    def decode(self, llr: torch.Tensor) -> torch.Tensor:
        """Decode channel LLRs to hard information bits.

        Input
        -----
        llr : [..., n], torch.float32
            Finite ``ln P(b=1|y) / P(b=0|y)`` per coded bit (:mod:`digisem.link` convention).

        Output
        ------
        : [..., k], dtype and device of ``llr``
            Hard information bits {0, 1}.
        """
        _check_blocks(llr, "llr", self.n, "n")
        if not torch.isfinite(llr).all():
            raise InputError(f"llr contains NaN or inf (shape {tuple(llr.shape)}); LLRs must be finite")
        flat = llr.reshape(-1, self.n)
        if self.decoder == "sionna":
            bits = self._sionna_for(flat.device)(flat.float(), num_iter=self.num_iter)
        elif self.kernel is not None and flat.device.type == "cpu" and self.num_iter > 0:
            bits = self.kernel(flat, self.num_iter)
        else:
            bits = self.bp(flat, self.num_iter)
        return bits.to(llr.dtype).reshape(*llr.shape[:-1], self.k)

    def decode_hard(self, bits: torch.Tensor, p: float) -> torch.Tensor:
        """Decode hard received bits of a binary symmetric channel with crossover probability ``p``.

        The channel LLRs are ``+-ln((1 - p) / p)`` (positive for a received 1), then :meth:`decode`.

        Input
        -----
        bits : [..., n], torch.float32
            Received bits {0, 1}.
        p : float
            Crossover probability, ``0 < p < 0.5``.

        Output
        ------
        : [..., k], dtype and device of ``bits``
            Hard information bits {0, 1}.
        """
        if not 0.0 < float(p) < 0.5:
            raise InputError(f"crossover probability p must satisfy 0 < p < 0.5, got {p}")
        _check_blocks(bits, "bits", self.n, "n")
        if not ((bits == 0) | (bits == 1)).all():
            raise InputError("bits must contain only 0 and 1")
        return self.decode((2.0 * bits - 1.0) * math.log((1.0 - p) / p))

    def _sionna_for(self, device: torch.device) -> LDPC5GDecoder:
        """Sionna's decoder on ``device`` (its index tables are plain attributes that ``.to()`` does not move)."""
        if self.sionna_decoder.device != str(device):
            self.sionna_decoder = LDPC5GDecoder(self.encoder, num_iter=self.num_iter, hard_out=True, return_infobits=True, device=str(device))
        return self.sionna_decoder

    def extra_repr(self) -> str:
        return f"k={self.k}, n={self.n}, num_iter={self.num_iter}, decoder={self.decoder!r}"


class _FloodingDecoder(nn.Module):
    """Flooding sum-product decoding on Sionna's pruned 5G graph, batch-last, with early stopping.

    Variable nodes (VNs) are the pruned graph's columns without the filler bits; check nodes (CNs)
    are grouped by degree so that each group's messages form a dense ``[cns, degree, batch]`` block.
    Internally LLRs are ``ln P(0)/P(1)`` (Sionna's internal sign), hard bit 1 where the posterior <= 0.
    """

    def __init__(self, pcm: sp.spmatrix, encoder: LDPC5GEncoder):
        super().__init__()
        k, k_ldpc, z = encoder.k, encoder.k_ldpc, encoder.z
        # Sionna's pruned columns: [2Z punctured | k - 2Z sent | fillers | n - k + 2Z sent | punctured].
        # Without the fillers, coded bit i is VN 2Z + i.
        pcm = sp.csr_matrix(pcm)
        pcm = sp.csr_matrix(pcm[:, np.r_[0:k, k_ldpc : pcm.shape[1]]])
        pcm.sort_indices()
        num_cns, num_vns = pcm.shape
        degrees = np.diff(pcm.indptr)
        self.groups: list[tuple[int, int, int, float]] = []
        edge_vn = []
        offset = 0
        for degree in np.unique(degrees[degrees > 0]).tolist():
            rows = np.flatnonzero(degrees == degree)
            edge_vn.append(np.concatenate([pcm.indices[pcm.indptr[r] : pcm.indptr[r + 1]] for r in rows]))
            self.groups.append((offset, degree, len(rows), 2.0 ** (degree - 1)))
            offset += degree * len(rows)
        edge_vn = np.concatenate(edge_vn)
        self.k, self.n, self.first_sent, self.num_vns = k, encoder.n, 2 * z, num_vns
        self.register_buffer("edge_vn", torch.as_tensor(edge_vn, dtype=torch.long), persistent=False)
        # VN sums over edges and parity checks as sparse 0/1 matrices ([vns, edges] and [cns, vns]).
        self.register_buffer("vn_sum", _csr(edge_vn, np.arange(len(edge_vn)), (num_vns, len(edge_vn))), persistent=False)
        self.register_buffer("checks", _csr(np.repeat(np.arange(num_cns), degrees), pcm.indices, (num_cns, num_vns)), persistent=False)

    @torch.no_grad()
    def forward(self, llr: torch.Tensor, num_iter: int) -> torch.Tensor:
        """Hard information bits ``[batch, k]`` from channel LLRs ``[batch, n]`` (digisem sign)."""
        dtype = torch.float64 if llr.dtype == torch.float64 else torch.float32
        out = torch.empty(llr.shape[0], self.k, dtype=dtype, device=llr.device)
        matrices = (self.vn_sum.to(dtype), self.checks.to(dtype))
        chunk = max(1, _CHUNK_MESSAGES // len(self.edge_vn))
        for start in range(0, llr.shape[0], chunk):
            self._decode_chunk(llr[start : start + chunk].to(dtype), out[start : start + chunk], num_iter, *matrices)
        return out

    def _decode_chunk(self, llr: torch.Tensor, out: torch.Tensor, num_iter: int, vn_sum: torch.Tensor, checks: torch.Tensor) -> None:
        batch, dtype = llr.shape[0], llr.dtype
        prior = llr.new_zeros(self.num_vns, batch)
        prior[self.first_sent : self.first_sent + self.n] = llr.T.neg().clamp_(-LLR_MAX, LLR_MAX)
        posterior = prior.clone()
        c2v = llr.new_zeros(len(self.edge_vn), batch)
        active = torch.arange(batch, device=llr.device)
        # Largest |product of tanh| whose 2 atanh stays within LLR_MAX (1 - eps/2 for float32).
        bound = min(math.tanh(LLR_MAX / 2), 1.0 - torch.finfo(dtype).eps / 2)
        # Scratch buffers are reused across iterations: fresh large tensors cost page faults.
        work, hard, syndrome = torch.empty_like(c2v), torch.empty_like(prior), llr.new_empty(checks.shape[0], batch)
        for iteration in range(num_iter):
            self._step(posterior, c2v, work, bound)
            torch.addmm(prior, vn_sum, c2v, out=posterior)
            if iteration + 1 == num_iter:
                break
            # Parity of each check over the hard decisions: frac(count / 2) is 0 when even.
            torch.le(posterior, 0, out=hard)
            done = torch.mm(checks, hard, out=syndrome).mul_(0.5).frac_().amax(0) == 0
            num_done = int(done.sum())
            if num_done == 0 or num_done < _COMPACT_FRACTION * len(active):
                continue
            finished = done.nonzero().squeeze(1)
            out[active[finished]] = hard[: self.k].index_select(1, finished).T
            if num_done == len(active):
                return
            running = (~done).nonzero().squeeze(1)
            active, prior, posterior, c2v = (t.index_select(-1, running) for t in (active, prior, posterior, c2v))
            work, hard, syndrome = torch.empty_like(c2v), torch.empty_like(prior), llr.new_empty(checks.shape[0], len(active))
        out[active] = (posterior[: self.k] <= 0).to(dtype).T

    def _step(self, posterior: torch.Tensor, c2v: torch.Tensor, work: torch.Tensor, bound: float) -> None:
        """One flooding check-node update: ``c2v`` ([edges, batch]) from the VN posteriors."""
        # Q = posterior - own c2v message, clipped; s = tanh(Q/2)/2 = sigmoid(Q) - 1/2 is 0 or at least
        # 2^-25 (float32; 2^-54 in float64) in magnitude, so s + _TINY is never 0: exact zeros (Q = 0,
        # e.g. punctured bits in the first iteration) become tiny positive values, like Sionna's
        # sign(0) = +1, and other values move by at most 1e-12.
        torch.index_select(posterior, 0, self.edge_vn, out=work)
        work.sub_(c2v).clamp_(-LLR_MAX, LLR_MAX).sigmoid_().sub_(0.5).add_(_TINY)
        for offset, degree, count, scale in self.groups:
            s = work[offset : offset + degree * count].view(count, degree, -1)
            # prod_{others} tanh = 2^(degree - 1) * prod(s) / s_own
            torch.div(s.prod(1, keepdim=True).mul_(scale), s, out=c2v[offset : offset + degree * count].view(count, degree, -1))
        c2v.clamp_(-bound, bound).atanh_().mul_(2.0)


class _NumbaDecoder:
    """The :class:`_FloodingDecoder`'s graph as flat arrays for :func:`._ldpc_kernel.decode_range`.

    Codewords are split into one contiguous range per thread. Python threads, not ``numba.prange``:
    numba's OpenMP layer shares libgomp with torch and reset torch's thread count (1 -> 2 measured),
    which made torch ops 40x slower on a busy machine.
    """

    def __init__(self, bp: _FloodingDecoder):
        degrees = np.concatenate([np.full(count, degree) for _, degree, count, _ in bp.groups])
        self.cn_ptr = np.concatenate([[0], np.cumsum(degrees)]).astype(np.int64)
        self.scale = (2.0 ** (degrees - 1)).astype(np.float32)
        self.edge_vn = bp.edge_vn.numpy().astype(np.int64)
        self.k, self.first_sent, self.num_vns = bp.k, bp.first_sent, bp.num_vns
        self.bound = np.float32(min(math.tanh(LLR_MAX / 2), 1.0 - np.finfo(np.float32).eps / 2))

    def __call__(self, llr: torch.Tensor, num_iter: int) -> torch.Tensor:
        """Hard information bits ``[batch, k]`` (uint8) from CPU channel LLRs ``[batch, n]`` (digisem sign), ``num_iter >= 1``."""
        values = llr.detach().to(torch.float32).contiguous().numpy()
        out = np.empty((len(values), self.k), dtype=np.uint8)
        parts = max(1, min(torch.get_num_threads(), -(-len(values) // _ldpc_kernel.LANES)))
        bounds = [len(values) * part // parts for part in range(parts + 1)]

        def run(part: int) -> None:
            _ldpc_kernel.decode_range(values, out, bounds[part], bounds[part + 1], self.cn_ptr, self.edge_vn, self.scale,
                                      self.first_sent, self.num_vns, num_iter, self.bound)

        if parts == 1:
            run(0)
        else:
            with ThreadPoolExecutor(parts) as pool:
                list(pool.map(run, range(parts)))
        return torch.from_numpy(out)


def _csr(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """Sparse CSR 0/1 float32 matrix with ones at ``(rows, cols)`` (int32 indices, as MKL and cuSPARSE take)."""
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
    matrix.sort_indices()
    with warnings.catch_warnings():
        # PyTorch flags CSR as beta; addmm/mm with CSR are the fast sparse paths on CPU and CUDA.
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        return torch.sparse_csr_tensor(
            torch.as_tensor(matrix.indptr, dtype=torch.int32),
            torch.as_tensor(matrix.indices, dtype=torch.int32),
            torch.as_tensor(matrix.data),
            shape,
            check_invariants=True,
        )


def _check_blocks(x: torch.Tensor, name: str, length: int, symbol: str) -> None:
    """Raise TypeError/ValueError unless ``x`` is a non-empty float tensor with last dimension ``length``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (float32 {{0, 1}} bits / LLRs), got dtype {x.dtype}")
    if x.dim() == 0 or x.shape[-1] != length:
        raise InputError(f"{name} must have last dimension {symbol}={length}, got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise InputError(f"{name} is empty (shape {tuple(x.shape)}); need at least one block of {symbol}={length}")
