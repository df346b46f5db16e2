"""The two protocol eras' message shapes, and the pure translations between them.

The legacy era (2024-11-05 … 2025-11-25) opens a session with `initialize`; the modern era (2026-07-28)
has no session: every request carries the protocol version and the client's info and capabilities in
its `params._meta`, `server/discover` tells what the server is, list results carry cache hints, and
change notifications flow only on `subscriptions/listen` streams (see docs/ARCHITECTURE.md, "Protocol
eras"). What cannot be translated gets `untranslatable`: an error that names the missing translation.
"""

from __future__ import annotations

from mcpctl import __version__, protocol
from mcpctl.constants import MCP_PROTOCOL_VERSION
from mcpctl.hints import Any

Message = dict[str, Any]

LEGACY, MODERN = "legacy", "modern"
MODERN_VERSION = "2026-07-28"
MODERN_VERSIONS = (MODERN_VERSION,)
_NS = "io.modelcontextprotocol/"
VERSION_KEY, CLIENT_INFO_KEY, CAPABILITIES_KEY = f"{_NS}protocolVersion", f"{_NS}clientInfo", f"{_NS}clientCapabilities"
SERVER_INFO_KEY, SUBSCRIPTION_KEY = f"{_NS}serverInfo", f"{_NS}subscriptionId"
UNSUPPORTED_VERSION = -32022  # the modern era's "unsupported protocol version"
MISSING_TRANSLATION = -32050  # ours: a feature of one era that mcpctl cannot carry to the other
LIST_METHODS = frozenset({"tools/list", "prompts/list", "resources/list", "resources/templates/list"})
# The change notifications a listen stream may carry, by the filter flag that asks for each.
LISTEN_FLAGS = {
    "toolsListChanged": ("notifications/tools/list_changed", "tools"),
    "promptsListChanged": ("notifications/prompts/list_changed", "prompts"),
    "resourcesListChanged": ("notifications/resources/list_changed", "resources"),
}
SHIM_INFO = {"name": "mcpctl", "version": __version__}


def params_of(message: Message) -> dict[str, Any]:
    params = message.get("params")
    return params if isinstance(params, dict) else {}


def meta_of(message: Message) -> dict[str, Any]:
    meta = params_of(message).get("_meta")
    return meta if isinstance(meta, dict) else {}


def is_modern(message: Message) -> bool:
    """A request in the modern envelope (the version key alone decides, as in the SDKs)."""
    return message.get("method") != "initialize" and VERSION_KEY in meta_of(message)


def enveloped(message: Message, client_info: dict[str, Any], capabilities: dict[str, Any]) -> Message:
    """A legacy client's request dressed for a modern server: its own info and capabilities in `_meta`."""
    envelope = {VERSION_KEY: MODERN_VERSION, CLIENT_INFO_KEY: client_info or SHIM_INFO, CAPABILITIES_KEY: capabilities}
    params = params_of(message)
    return {**message, "params": {**params, "_meta": {**meta_of(message), **envelope}}}


def stripped(message: Message) -> Message:
    """A modern client's request for a legacy server: the envelope's reserved keys taken out of `_meta`
    (a legacy server may refuse them); the rest (`progressToken`) stays."""
    meta = {key: value for key, value in meta_of(message).items() if not key.startswith(_NS)}
    params = {key: value for key, value in params_of(message).items() if key != "_meta"}
    if meta:
        params["_meta"] = meta
    return {**message, "params": params}


def discover_request(request_id: object) -> Message:
    """The shim's own `server/discover`: the readiness probe, and the health check of a modern server."""
    meta = {VERSION_KEY: MODERN_VERSION, CLIENT_INFO_KEY: SHIM_INFO, CAPABILITIES_KEY: {}}
    return {"jsonrpc": "2.0", "id": request_id, "method": "server/discover", "params": {"_meta": meta}}


def modern_version(result: object) -> str | None:
    """The newest modern version a discover result names, None when it names none we speak."""
    versions = result.get("supportedVersions") if isinstance(result, dict) else None
    known = [v for v in MODERN_VERSIONS if isinstance(versions, list) and v in versions]
    return known[-1] if known else None


def server_info(discover: Message) -> dict[str, Any]:
    info = discover.get("_meta", {}).get(SERVER_INFO_KEY) if isinstance(discover.get("_meta"), dict) else None
    return info if isinstance(info, dict) else {"name": "", "version": ""}


def initialize_from_discover(discover: Message, wanted: object) -> Message:
    """A legacy client's initialize answered from a modern server's discover result."""
    legacy = wanted if isinstance(wanted, str) and wanted in protocol.KNOWN_VERSIONS else MCP_PROTOCOL_VERSION
    result = {"protocolVersion": legacy, "capabilities": discover.get("capabilities", {})}
    result["serverInfo"] = server_info(discover)
    if isinstance(discover.get("instructions"), str):
        result["instructions"] = discover["instructions"]
    return result


def discover_from_initialize(init: Message) -> Message:
    """A client's server/discover answered from a legacy server's initialize result. It names the server's
    own version, as the server would: a client of both eras then falls back to initialize (the era the
    server speaks), and a client pinned to the modern era is still served, translated."""
    info = init.get("serverInfo") if isinstance(init.get("serverInfo"), dict) else {"name": "", "version": ""}
    result = {
        "supportedVersions": [str(init.get("protocolVersion", MCP_PROTOCOL_VERSION))],
        "capabilities": init.get("capabilities", {}),
        "cacheScope": "private",
        "ttlMs": 0,
        "resultType": "complete",
        "_meta": {SERVER_INFO_KEY: info},
    }
    if isinstance(init.get("instructions"), str):
        result["instructions"] = init["instructions"]
    return result


def completed(method: str, message: Message) -> Message:
    """A legacy server's answer for a modern client: `resultType` and, on lists, the cache hints the
    modern era requires (a legacy answer promises nothing, so it is stale at once)."""
    result = message.get("result")
    if not isinstance(result, dict):
        return message
    hints = {"ttlMs": 0, "cacheScope": "private"} if method in LIST_METHODS else {}
    return {**message, "result": {**hints, "resultType": "complete", **result}}


def honoured(filters: object, capabilities: dict[str, Any]) -> dict[str, bool]:
    """The list_changed kinds of a listen filter that a legacy server's capabilities can deliver."""
    asked = filters if isinstance(filters, dict) else {}
    able = {flag for flag, (_, cap) in LISTEN_FLAGS.items() if _lists_changes(capabilities.get(cap))}
    return {flag: True for flag in LISTEN_FLAGS if asked.get(flag) is True and flag in able}


def _lists_changes(capability: object) -> bool:
    return isinstance(capability, dict) and capability.get("listChanged") is True


def acknowledged(subscription: object, honoured_filter: dict[str, Any]) -> Message:
    params = {"_meta": {SUBSCRIPTION_KEY: subscription}, "notifications": honoured_filter}
    return {"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged", "params": params}


def on_stream(message: Message, subscription: object) -> Message:
    """A notification as an event of the listen stream `subscription`."""
    params = params_of(message)
    return {**message, "params": {**params, "_meta": {**meta_of(message), SUBSCRIPTION_KEY: subscription}}}


def off_stream(message: Message) -> Message:
    """A listen event as a legacy notification: the stream's id taken out."""
    meta = {key: value for key, value in meta_of(message).items() if key != SUBSCRIPTION_KEY}
    params = {key: value for key, value in params_of(message).items() if key != "_meta"}
    return {**message, "params": {**params, **({"_meta": meta} if meta else {})}}


def untranslatable(request_id: object, what: str) -> Message:
    """The error for a feature of one era that mcpctl does not translate into the other."""
    text = f"mcpctl cannot translate {what} between protocol eras (see the README: Protocol eras)"
    return protocol.error_response(request_id, MISSING_TRANSLATION, text, {"missing_translation": what})
