"""digisem.nn: neural-network blocks shared by every system (RCB, T-RCB, SE, GDN)."""

from .blocks import GDN, RCB, SqueezeExcitation, TransposedRCB

__all__ = ["GDN", "RCB", "SqueezeExcitation", "TransposedRCB"]
