"""mlip: machine-learned interatomic potentials, from DFT files to simulations.

Units everywhere inside: eV, Å, eV/Å, eV/Å³, fs.

    import mlip
    potential = mlip.build_potential("equivariant", elements=["H", "C", "O"], cutoff=5.0)
    potential = mlip.load("run/model.mlip")          # a trained model file
    calc = mlip.MLIPCalculator("run/model.mlip")     # ASE calculator
"""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"
__all__ = ["MLIPCalculator", "__version__", "build_potential", "load", "load_preset", "register_architecture"]

_LAZY = {"build_potential": "mlip.models", "load": "mlip.export", "MLIPCalculator": "mlip.calculator",
         "load_preset": "mlip.models.presets", "register_architecture": "mlip.models.registry"}


def __getattr__(name: str) -> Any:
    """Top-level API imported on first use, so that `import mlip` (and `--version`) stays light."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mlip' has no attribute '{name}'")
