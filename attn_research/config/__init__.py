"""Config handling: fields with constraints, config files, overrides."""
