"""The HTTP gateway: the shims' MCP sessions over streamable HTTP, with tokens, aggregation and metrics.

`python -m mcpctl.gateway` is its process; the CLI imports only `tokens` and `lifecycle` of it.
"""
