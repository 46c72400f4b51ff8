"""What the hardware a run is on can do, where digisem adapts to it: native bfloat16, and whether
torch's channels-last kernels are sound there. A leaf module (it imports only torch).

Both were found on an AVX2-only AMD EPYC (no AVX-512) with torch 2.13: bfloat16 autocast is emulated
there and trains 7-40x slower than float32, and the oneDNN kernel for the weight gradient of 1x1
convolutions in the channels-last format corrupts the heap ("free(): invalid next size", "double free
or corruption", or a hang), on one thread as on two (``docs/results/training_speed.md``).
"""

from __future__ import annotations

import platform

import torch

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
