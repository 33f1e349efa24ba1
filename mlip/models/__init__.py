"""Architectures mapping a graph to per-atom energies, and the `Potential` wrapper."""

from mlip.models.build import build_potential
from mlip.models.potential import Potential, UnknownElementError

__all__ = ["Potential", "UnknownElementError", "build_potential"]
