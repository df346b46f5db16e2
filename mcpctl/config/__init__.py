"""The config file: load and validate, environments, writing, import, history and templates."""
