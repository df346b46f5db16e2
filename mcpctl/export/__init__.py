"""Generators for the engines a user already runs: systemd units, Kubernetes manifests, Compose files,
and the login service that runs `mcpctl resume`. Each returns text; nothing here writes or runs anything."""
