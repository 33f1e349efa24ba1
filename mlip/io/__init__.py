"""Readers: files on disk to `Frame`s in eV and Å (`read`, `iread`)."""

from mlip.io.errors import InvalidStructureError
from mlip.io.frame import Frame
from mlip.io.read import detect_format, expand_paths, iread, read
from mlip.io.read_options import ReadOptions

__all__ = ["Frame", "InvalidStructureError", "ReadOptions", "detect_format", "expand_paths", "iread", "read"]
