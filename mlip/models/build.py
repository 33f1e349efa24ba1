"""`build_potential`: a freshly initialised potential from an architecture name and options."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from mlip.models.potential import Potential
from mlip.models.registry import get_architecture

POTENTIAL_OPTIONS = ("reference_energies", "scale", "shift", "learn_scale_shift", "repulsion")


def build_network(architecture: str, num_species: int, cutoff: float, **options: Any) -> torch.nn.Module:
    """The network registered as `architecture` (`mlip.models.registry`), built with `options`."""
    return get_architecture(architecture)(num_species, cutoff, **options)


def build_potential(architecture: str, elements: list[int | str], cutoff: float, dtype: torch.dtype = torch.float32,
                    **options: Any) -> Potential:
    """A new `Potential` for `elements` (atomic numbers or symbols) with neighbour cutoff `cutoff` Å.

    Options named in `POTENTIAL_OPTIONS` go to the wrapper (reference energies in eV keyed by
    atomic number or symbol, scale, shift); the rest to the network (e.g. channels, lmax,
    num_layers, correlation, radial="spline"|"mlp", avg_num_neighbors). The model is built
    under `dtype` (e3nn's constants are made in the default dtype, so a float64 model must be
    built in float64 to be exact to 1e-12) and the caller's default dtype is restored after.
    """
    from ase.data import atomic_numbers as z_of_symbol

    numbers = sorted({int(e) if not isinstance(e, str) else z_of_symbol[e] for e in elements})
    wrapper = {k: options.pop(k) for k in POTENTIAL_OPTIONS if k in options}
    references: Mapping[Any, float] = wrapper.pop("reference_energies", None) or {}
    wrapper["reference_energies"] = {z_of_symbol[k] if isinstance(k, str) else int(k): float(v)
                                     for k, v in references.items()}
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        network = build_network(architecture, len(numbers), cutoff, **options)
        potential = Potential(network, numbers, cutoff, **wrapper).to(dtype)
    finally:
        torch.set_default_dtype(previous)
    # Everything needed to rebuild the same module (JSON-able): model files store it.
    potential.config = {"architecture": architecture, "elements": numbers, "cutoff": float(cutoff),
                        "dtype": str(dtype).removeprefix("torch."), "network": _jsonable(options),
                        "potential": {k: v for k, v in wrapper.items() if k != "reference_energies"}}
    return potential


def _jsonable(options: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
