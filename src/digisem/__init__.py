"""digisem: digital semantic communications in PyTorch.

The chain every system shares::

    image -> Encoder -> features -> Digitizer -> payload -> Link -> payload' -> Digitizer^-1 -> Restorer -> Decoder

``digisem.link`` is the digital link (bits, constellations, channels, LDPC, closed-form theory);
``digisem.data`` and ``digisem.metrics`` hold datasets and image/link metrics; ``digisem.cli`` is the
``digisem`` command.
"""

from .hardware import tune_allocator

__version__ = "0.1.0"

ALLOCATOR_TUNED = tune_allocator()
"""Whether importing digisem set glibc's allocator thresholds (:func:`digisem.hardware.tune_allocator`)."""
