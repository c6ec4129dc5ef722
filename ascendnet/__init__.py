"""AscendNet: an open marketplace for AI prompts as NFTs and escrowed GPU compute.

This package holds what every deployable shares: settings, logging, errors, keystores, the
toolchain locator, the prompt metadata schema and the ``ascendnet`` command line.
"""

__version__ = "0.1.0"
