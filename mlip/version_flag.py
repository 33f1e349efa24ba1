"""`--version` for every mlip command."""

from __future__ import annotations

import argparse

from mlip import __version__


def version_text(program: str) -> str:
    """"mlip-train 0.2.0 (torch 2.13.0+cpu, e3nn 0.6.0)": the command, mlip's version and the key libraries'."""
    from importlib.metadata import PackageNotFoundError, version

    libraries = []
    for name in ("torch", "e3nn"):
        try:
            libraries.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            libraries.append(f"{name} missing")
    return f"{program} {__version__} ({', '.join(libraries)})"


def add_version_flag(parser: argparse.ArgumentParser) -> None:
    """Add `--version` (prints `version_text` and exits 0)."""
    parser.add_argument("--version", action="version", version=version_text(parser.prog))
