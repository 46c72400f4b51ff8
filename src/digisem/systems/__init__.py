"""digisem.systems: one module per system family, holding only what is specific to it."""

from .ampsc import AMPSC, AMPSCConfig, IRSNet, mask_attack, receiver_complexity
from .jcm import JCM, JCMConfig
from .scdm import SCDM, MMSEDenoiser, SamplerConfig, SCDMConfig, VESchedule

__all__ = ["AMPSC", "JCM", "SCDM", "AMPSCConfig", "IRSNet", "JCMConfig", "MMSEDenoiser", "SCDMConfig", "SamplerConfig", "VESchedule", "mask_attack", "receiver_complexity"]
