"""Adapters from mlip potentials to other simulation engines (torch-sim)."""
