"""Architecture registry: names → network factories, so that networks from outside mlip train,
save and load like the built-in ones.

A network maps a graph to per-atom energies:

    factory(num_species: int, cutoff: float, **options) -> torch.nn.Module
    module(species (N,) int64, edge_vectors (E, 3) Å, receivers (E,), senders (E,)) -> (N,) energies

Register one in code (`@mlip.register_architecture("name")` on a class or function), or from an
installed package through the entry-point group `mlip.architectures` (``name = "pkg.module:Class"``),
which mlip looks up the first time it meets an unknown name, e.g. in a model file. Model files store
only the name and the options: loading never imports a module that the user did not install.
"""

from __future__ import annotations

from typing import Callable

import torch

NetworkFactory = Callable[..., torch.nn.Module]
ENTRY_POINT_GROUP = "mlip.architectures"
_REGISTRY: dict[str, NetworkFactory] = {}


def register_architecture(name: str, factory: NetworkFactory | None = None):
    """Register `factory` under `name` (usable as a decorator). Re-registering the same object is a no-op."""

    def add(target: NetworkFactory) -> NetworkFactory:
        if name in _REGISTRY and _REGISTRY[name] is not target:
            raise ValueError(f"architecture '{name}' is already registered ({_REGISTRY[name]!r})")
        _REGISTRY[name] = target
        return target

    return add(factory) if factory is not None else add


def registered_architectures() -> list[str]:
    """Names known now (built-in, registered in code, and installed entry points)."""
    _load_entry_points()
    return sorted(_REGISTRY)


def get_architecture(name: str) -> NetworkFactory:
    """The factory registered as `name`; unknown names are looked up among installed entry points first."""
    if name not in _REGISTRY:
        _load_entry_points()
    if name not in _REGISTRY:
        raise ValueError(f"unknown architecture '{name}'; known: {sorted(_REGISTRY)}. A third-party architecture "
                         f"must be registered first (mlip.register_architecture) or installed with an "
                         f"'{ENTRY_POINT_GROUP}' entry point")
    return _REGISTRY[name]


def _load_entry_points() -> None:
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name not in _REGISTRY:
            _REGISTRY[entry.name] = entry.load()


def _equivariant(num_species: int, cutoff: float, **options) -> torch.nn.Module:
    from mlip.models.equivariant import EquivariantNetwork

    return EquivariantNetwork(num_species, cutoff, **options)


def _transformer(num_species: int, cutoff: float, **options) -> torch.nn.Module:
    from mlip.models.transformer import TransformerNetwork

    return TransformerNetwork(num_species, cutoff, **options)


register_architecture("equivariant", _equivariant)
register_architecture("transformer", _transformer)
