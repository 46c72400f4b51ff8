"""digisem.nn: neural-network blocks shared by every system (RCB, T-RCB, SE, GDN, ResNet block)."""

from .blocks import GDN, RCB, ResidualBlock, SqueezeExcitation, TransposedRCB

__all__ = ["GDN", "RCB", "ResidualBlock", "SqueezeExcitation", "TransposedRCB"]
