"""MCP clients' config files: finding them, reading their server entries, and rewriting those entries to
run `mcpctl connect` (with a backup, atomically, every other byte kept)."""
