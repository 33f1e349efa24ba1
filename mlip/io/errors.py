"""The one exception type for bad input data."""

from __future__ import annotations


class InvalidStructureError(ValueError):
    """A structure file or one of its frames cannot be used.

    The message always names the file, the frame index (when known) and the problem,
    so that a user can find and fix the offending record.
    """

    def __init__(self, problem: str, source: str | None = None, index: int | None = None):
        self.problem = problem
        self.source = source
        self.index = index
        where = []
        if source is not None:
            where.append(f"file '{source}'")
        if index is not None:
            where.append(f"frame {index}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {problem}" if prefix else problem)
