"""Lienwatch: the console script, settings and process wiring (the composition root).

Nothing imports this package: engines and shells receive plain values from it.
"""

__version__ = "0.1.0"
