"""Model presets shipped with mlip: one YAML file of network options per name (package data)."""
