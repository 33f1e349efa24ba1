"""Model-size presets: YAML files shipped inside the package (`mlip/presets/`, small, medium, large per
architecture), found with importlib.resources so that they work from an installed wheel."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml


def preset_names() -> list[str]:
    """Names of the shipped presets, e.g. ["equivariant_large", "equivariant_medium", ...]."""
    return sorted(entry.name[:-5] for entry in resources.files("mlip.presets").iterdir() if entry.name.endswith(".yaml"))


def load_preset(name_or_path: str | Path) -> dict[str, Any]:
    """Options of a preset: a name such as "equivariant_small" or a path to a YAML file.

    Returns a dict with `architecture` and network options, ready for
    `build_potential(**options, elements=..., cutoff=...)` (the cutoff belongs to the data's graphs).
    """
    path = Path(name_or_path)
    if not path.suffix:
        shipped = resources.files("mlip.presets") / f"{name_or_path}.yaml"
        if not shipped.is_file():
            raise FileNotFoundError(f"no model preset '{name_or_path}'; available: {preset_names()}, "
                                    f"or give the path of a YAML file")
        text, path = shipped.read_text(), Path(f"preset {name_or_path}")
    elif path.exists():
        text = path.read_text()
    else:
        raise FileNotFoundError(f"no model preset file {path}; shipped presets: {preset_names()}")
    options = yaml.safe_load(text)
    if not isinstance(options, dict) or "architecture" not in options:
        raise ValueError(f"{path} must be a mapping with at least 'architecture'")
    return options
