"""digisem.systems: one module per system family, holding only what is specific to it."""

from .ampsc import AMPSC, AMPSCConfig, IRSNet, mask_attack, receiver_complexity

__all__ = ["AMPSC", "AMPSCConfig", "IRSNet", "mask_attack", "receiver_complexity"]
