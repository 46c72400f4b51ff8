"""Shared test helpers: binomial confidence checks and a seeded generator."""

import math
import os

import pytest
import torch

if "OMP_NUM_THREADS" not in os.environ:
    # The tests run many tiny ops; with more intra-op threads than idle cores (a training run beside
    # them, or CI), OpenMP's spinning makes them many times slower (one SCDM test: 17 s -> 335 s).
    torch.set_num_threads(1)


def assert_rate_within_binomial(errors: int, trials: int, p: float, z: float = 5.0) -> None:
    """Assert that ``errors`` out of ``trials`` is consistent with rate ``p`` (|k - np| <= z sigma + 1)."""
    expected = trials * p
    sigma = math.sqrt(trials * p * (1.0 - p))
    assert abs(errors - expected) <= z * sigma + 1.0, (
        f"{errors} errors in {trials} trials (rate {errors / trials:.4g}) vs theory {p:.4g} "
        f"(expected {expected:.1f} +- {z} x {sigma:.1f})"
    )


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)
