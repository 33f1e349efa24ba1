"""The ASE calculator: `MLIPCalculator(model, device="cpu", dtype=None)`."""

from mlip.calculator.ase_calculator import MLIPCalculator

__all__ = ["MLIPCalculator"]
