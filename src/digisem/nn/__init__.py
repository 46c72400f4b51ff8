"""digisem.nn: neural-network blocks shared by every system (RCB, T-RCB, SE, GDN, ResNet and Transformer blocks)."""

from .blocks import (
    GDN,
    RCB,
    ResidualBlock,
    SqueezeExcitation,
    TransformerBlock,
    TransposedRCB,
)

__all__ = ["GDN", "RCB", "ResidualBlock", "SqueezeExcitation", "TransformerBlock", "TransposedRCB"]
