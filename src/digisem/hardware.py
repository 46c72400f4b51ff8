"""What the hardware a run is on can do, where digisem adapts to it: native bfloat16, whether
torch's channels-last kernels are sound there, and the C allocator's thresholds. A leaf module (it
imports only torch).

Both were found on an AVX2-only AMD EPYC (no AVX-512) with torch 2.13: bfloat16 autocast is emulated
there and trains 7-40x slower than float32, and the oneDNN kernel for the weight gradient of 1x1
convolutions in the channels-last format corrupts the heap ("free(): invalid next size", "double free
or corruption", or a hang), on one thread as on two (``docs/results/training_speed.md``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

import torch

MALLOC_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
"""Blocks up to this size come from the heap instead of fresh ``mmap`` pages (glibc's 64-bit maximum)."""
MALLOC_TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024
"""Free memory kept at the top of the heap before glibc hands it back to the kernel."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3

NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")
"""CPU features (``torch.cpu.get_capabilities()`` keys, x86 and ARM) that compute bfloat16 in hardware."""


def native_bfloat16(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 in hardware: a CUDA device that supports it, or a CPU
    with AVX512-BF16, AMX-BF16 or ARM's BF16 extensions. Elsewhere (e.g. an AVX2-only x86 CPU)
    bfloat16 autocast is emulated, and was measured 7-40x slower than float32 on one
    (``docs/results/training_speed.md``)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return True
    capabilities = torch.cpu.get_capabilities()
    return any(bool(capabilities.get(flag, False)) for flag in NATIVE_BFLOAT16_FLAGS)


def cpu_description() -> str:
    """The CPU a run ran on: its name, torch's kernel capability and whether bfloat16 is native
    (e.g. ``"AMD EPYC, AVX2, bf16 emulated"``)."""
    name = torch.cpu.get_capabilities().get("cpu_name", platform.processor() or "unknown")
    return f"{name}, {torch.backends.cpu.get_cpu_capability()}, bf16 {'native' if native_bfloat16('cpu') else 'emulated'}"


def channels_last_is_sound(device: str | torch.device = "cpu") -> bool:
    """Whether training in the channels-last memory format is safe on ``device``: False on an x86
    CPU without AVX-512, where torch 2.13's oneDNN weight gradient of 1x1 convolutions in channels-last
    corrupts the heap (see the module note); True elsewhere (AVX-512 x86, where it was measured
    sound and 1.1-1.3x faster, other CPUs, CUDA)."""
    device = torch.device(device)
    if device.type != "cpu":
        return True
    capabilities = torch.cpu.get_capabilities()
    if capabilities.get("architecture") not in ("x86_64", "x86"):
        return True
    return bool(capabilities.get("avx512_f", False))


def tune_allocator() -> bool:
    """Keep glibc's allocator from returning the memory of every large tensor to the kernel.

    With glibc's defaults, a tensor of a few MB is ``mmap``-ed, handed back on free and faulted in
    page by page when the next one is allocated: a decoder pass of AMP-SC on 100 CIFAR-10 images
    spent about a third of its time in page faults, and the SCDM sampler a fifth of its CPU time in
    the kernel (``docs/results/eval.md``). This sets ``M_MMAP_THRESHOLD`` to
    ``MALLOC_MMAP_THRESHOLD_BYTES`` and ``M_TRIM_THRESHOLD`` to ``MALLOC_TRIM_THRESHOLD_BYTES``, as
    the environment variables ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` would, for the
    allocations made from now on. The cost is up to that much freed memory kept by the process.

    ``digisem`` calls it once on import. Set ``DIGISEM_MALLOC=system`` to keep the allocator as it
    is, e.g. to compare, or when a different allocator (jemalloc, tcmalloc) is preloaded.

    Returns:
        True when the thresholds were set; False on a C library without ``mallopt`` (not glibc) or
        with ``DIGISEM_MALLOC=system``.
    """
    if os.environ.get("DIGISEM_MALLOC", "").strip().lower() == "system":
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        return False
    if mallopt is None or platform.libc_ver()[0] != "glibc":
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD_BYTES))
