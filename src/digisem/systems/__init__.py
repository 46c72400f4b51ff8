"""digisem.systems: one module per system family, holding only what is specific to it.

Importing this package imports every module in it, so each family's ``@register_system`` fills
:data:`FAMILIES` (the one registry): a new system is a new file here, with no list to edit.
"""

import importlib
import pkgutil

from .base import FAMILIES, Family, System, SystemOutput, register_system

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

from .ampsc import AMPSC, AMPSCConfig, IRSNet, mask_attack, receiver_complexity
from .jcm import JCM, JCMConfig
from .scdm import SCDM, MMSEDenoiser, SamplerConfig, SCDMConfig, VESchedule

__all__ = ["AMPSC", "FAMILIES", "JCM", "SCDM", "AMPSCConfig", "Family", "IRSNet", "JCMConfig", "MMSEDenoiser", "SCDMConfig",
           "SamplerConfig", "System", "SystemOutput", "VESchedule", "mask_attack", "receiver_complexity", "register_system"]
