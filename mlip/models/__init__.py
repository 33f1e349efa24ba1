"""Architectures mapping a graph to per-atom energies, and the `Potential` wrapper."""

from mlip.models.build import build_potential
from mlip.models.potential import Potential, UnknownElementError
from mlip.models.registry import register_architecture, registered_architectures

__all__ = ["Potential", "UnknownElementError", "build_potential", "register_architecture", "registered_architectures"]
