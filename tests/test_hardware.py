"""digisem.hardware.tune_allocator: glibc's thresholds keep freed tensor memory instead of
faulting it in again page by page."""

import os
import platform
import subprocess
import sys

import pytest

import digisem

FAULTS_OF_FIVE_PASSES = """
import resource, torch, digisem
from torch import nn
torch.set_num_threads(1)
layers = nn.Sequential(*[nn.Conv2d(64, 64, 1) for _ in range(4)]).eval()
x = torch.rand(100, 64, 16, 16)
with torch.inference_mode():
    layers(x)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        layers(x)
print(digisem.ALLOCATOR_TUNED, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _tuned_and_faults(malloc: str) -> tuple[bool, int]:
    env = {**os.environ, "DIGISEM_MALLOC": malloc}
    tuned, faults = subprocess.run([sys.executable, "-c", FAULTS_OF_FIVE_PASSES], env=env, capture_output=True, text=True, check=True).stdout.split()
    return tuned == "True", int(faults)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt thresholds are glibc's")
def test_importing_digisem_tunes_glibc_so_repeated_passes_stop_faulting_pages():
    # Each pass allocates and frees 6.5 MB activations. glibc's defaults hand them back to the
    # kernel (about 7,000 page faults per pass here); the tuned heap keeps them.
    assert digisem.ALLOCATOR_TUNED
    tuned, tuned_faults = _tuned_and_faults("tuned")
    untouched, system_faults = _tuned_and_faults("system")
    assert tuned and not untouched
    assert system_faults > 5 * 1600, "the reference pattern no longer faults with glibc's defaults"
    assert tuned_faults * 5 < system_faults
