"""Training: one generic loop (:mod:`.loop`), one recipe runner (:func:`run_recipe`) and the recipes
of the families whose training lives here (:mod:`.amp`, :mod:`.scdm`, :mod:`.robust`; a family may
also carry its recipe in its own system file, as :mod:`digisem.systems.deepjscc` does)."""

from . import amp, robust, scdm  # noqa: F401  (each registers its family's recipe)
from .recipe import RecipeError, load_recipe
from .run import run_recipe

__all__ = ["RecipeError", "load_recipe", "run_recipe"]
