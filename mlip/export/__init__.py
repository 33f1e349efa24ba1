"""Model files: `save(potential, path)` and `load(path) -> Potential`.

A model file is a zip archive holding `mlip.json` (format version, architecture, elements,
cutoff, dtype, reference energies, units, mlip version, training metadata) and `weights.pt`
(a plain dict of tensors). Loading parses the JSON, rebuilds the network from it and reads
the tensors with `torch.load(weights_only=True)`: no pickled code is ever executed.
"""

from mlip.export.model_file import FORMAT_VERSION, ModelFileError, load, read_metadata, save

__all__ = ["FORMAT_VERSION", "ModelFileError", "load", "read_metadata", "save"]
