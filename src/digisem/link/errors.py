"""The one error type of digisem's argument checks.

Every check of a caller's value in digisem (the link, the systems, the data, the recipes, the
command line) raises :class:`InputError`: its message names the argument, what it got and what it
accepts. Any other exception from inside the library is a bug, and the ``digisem`` command shows
its traceback instead of a one-line usage error.
"""

from __future__ import annotations


class InputError(ValueError):
    """A caller's argument is outside what the function accepts; the message names it and the remedy.

    A subclass of :class:`ValueError`, so ``except ValueError`` keeps catching it.
    """
