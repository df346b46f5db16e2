"""A tiny stdlib-only MCP server for benchmarks: cheap enough to run fifty of.

Reads newline-delimited JSON-RPC on stdin; answers `initialize` (echoing the requested protocol version)
and `ping`; ignores notifications; answers any other request with "method not found"; exits on EOF.
"""

from __future__ import annotations

import json
import sys


def answer(message: dict[str, object]) -> dict[str, object] | None:
    if "id" not in message:
        return None  # a notification (or a response to us): nothing to say
    method = message.get("method")
    if method == "initialize":
        params = message.get("params")
        requested = params.get("protocolVersion") if isinstance(params, dict) else None
        result = {
            "protocolVersion": requested or "2025-11-25",
            "capabilities": {},
            "serverInfo": {"name": "tiny", "version": "1"},
        }
        return {"jsonrpc": "2.0", "id": message["id"], "result": result}
    if method == "ping":
        return {"jsonrpc": "2.0", "id": message["id"], "result": {}}
    if method is None:
        return None
    error = {"code": -32601, "message": f"Method not found: {method}"}
    return {"jsonrpc": "2.0", "id": message["id"], "error": error}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except ValueError:
            continue
        reply = answer(message) if isinstance(message, dict) else None
        if reply is not None:
            sys.stdout.write(json.dumps(reply, separators=(",", ":")) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
