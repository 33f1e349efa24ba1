"""Model-size presets: YAML files in `configs/models/` (small, medium, large per architecture)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PRESET_DIR = Path(__file__).resolve().parents[2] / "configs" / "models"


def load_preset(name_or_path: str | Path) -> dict[str, Any]:
    """Options of a preset: a name such as "equivariant_small" or a path to a YAML file.

    Returns a dict with `architecture` and network options, ready for
    `build_potential(**options, elements=..., cutoff=...)` (the cutoff belongs to the data's graphs).
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        available = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no model preset '{name_or_path}'; available: {available}")
    options = yaml.safe_load(path.read_text())
    if not isinstance(options, dict) or "architecture" not in options:
        raise ValueError(f"{path} must be a mapping with at least 'architecture'")
    return options
