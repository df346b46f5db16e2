"""Tools from the command line: `key=value` arguments typed by the tool's input schema, results as text."""

from __future__ import annotations

import json

from mcpctl.errors import ErrorType, Failure, MCPCtlError, UsageError
from mcpctl.hints import Any
from mcpctl.i18n import N_

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_ARGS_EXAMPLE = 'pass a JSON object, e.g. --args \'{"text": "hi"}\''

# How a bad argument reads (English: --json carries it); KNOWN lets the CLI show it translated.
NOT_JSON, NOT_OBJECT = N_("--args is not JSON: {error}"), N_("--args must be a JSON object")
NOT_KEY_VALUE, SEE_TOOLS = N_("argument {pair!r} is not key=value"), N_("see `mcpctl tools {server}`")
NO_ARGUMENT, SPELLING = N_("{name} has no argument {key!r} (it takes: {known})"), N_("check the spelling")
NEEDS = N_("{name} needs {missing}: pass {pairs}")
NOT_ONE_OF, PICK = N_("{tool}: {key}={raw!r} is not one of {choices}"), N_("pick one of the listed values")
NOT_TYPE = N_("{tool}: {key}={raw!r} is not {expected}")
KNOWN = (NOT_JSON, NOT_KEY_VALUE, SEE_TOOLS, NO_ARGUMENT, NEEDS, NOT_ONE_OF, NOT_TYPE)


def arguments(server: str, tool: dict[str, Any], pairs: list[str], args_json: str | None) -> dict[str, Any]:
    """The arguments for a call: `--args` JSON first, then each `key=value`, converted and checked
    against the tool's input schema before anything is sent."""
    name = str(tool.get("name"))
    schema = _dict(tool.get("inputSchema"))
    properties = _dict(schema.get("properties"))
    values: dict[str, Any] = {}
    if args_json is not None:
        try:
            values = json.loads(args_json)
        except ValueError as exc:
            raise UsageError(NOT_JSON.format(error=exc), 'pass a JSON object, e.g. --args \'{"text": "hi"}\'') from None
        if not isinstance(values, dict):
            raise UsageError(NOT_OBJECT, 'e.g. --args \'{"text": "hi"}\'')
    closed = bool(properties) and not schema.get("additionalProperties", False)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UsageError(NOT_KEY_VALUE.format(pair=pair), SEE_TOOLS.format(server=server))
        if closed and key not in properties:
            known = ", ".join(sorted(properties)) or "none"
            raise UsageError(NO_ARGUMENT.format(name=name, key=key, known=known), SPELLING)
        prop = properties.get(key)
        values[key] = convert(f"{server} {name}", key, raw, _dict(prop))
    required = schema.get("required")
    missing = [str(key) for key in required if key not in values] if isinstance(required, list) else []
    if missing:
        needs = NEEDS.format(name=name, missing=", ".join(missing), pairs=" ".join(f"{key}=..." for key in missing))
        raise UsageError(needs, SEE_TOOLS.format(server=server))
    return values


def repeatable(annotations: object) -> bool:
    """A call of this tool may be sent again after one was lost in flight: the tool says it changes
    nothing (`readOnlyHint`) or that a second call changes nothing more (`idempotentHint`)."""
    given = _dict(annotations)
    return given.get("readOnlyHint") is True or given.get("idempotentHint") is True


def lost_in_flight(server: str, tool: str, reason: str) -> MCPCtlError:
    """The call reached the server, which went away before it answered: the tool may have run, so the
    call is not sent again by itself (a second one could do it twice)."""
    from mcpctl.i18n import _

    reason = reason.removeprefix(f"lost the connection to {server}: ")  # the shim's words for it
    message = _("lost the connection to {name} with the call of {tool} in flight: {reason}")
    hint = _(
        "not retried: {tool} may have run (it is not marked read-only or idempotent); see `mcpctl logs {name}`,"
        " then call it again if it did not"
    )
    fields = {"name": server, "tool": tool, "reason": reason}
    return MCPCtlError.from_failure(Failure(ErrorType.CONNECTION_LOST, message.format(**fields), hint.format(**fields)))


def convert(tool: str, key: str, raw: str, prop: dict[str, Any]) -> Any:
    """A command-line string as the JSON type the schema asks for (strings are tried last)."""
    types = schema_types(prop)
    ordered = [t for t in types if t != "string"] + (["string"] if "string" in types or not types else [])
    for kind in ordered:
        value = _as(kind, raw)
        if value is not _NO:
            if "enum" in prop and value not in prop["enum"]:
                choices = ", ".join(json.dumps(choice) for choice in prop["enum"])
                raise UsageError(NOT_ONE_OF.format(tool=tool, key=key, raw=raw, choices=choices), PICK)
            return value
    expected = " or ".join(_EXPECTED.get(t, t) for t in ordered)
    wrong = NOT_TYPE.format(tool=tool, key=key, raw=raw, expected=expected)
    raise UsageError(wrong, SEE_TOOLS.format(server=tool.split(maxsplit=1)[0]))


def schema_types(prop: dict[str, Any]) -> list[str]:
    kind = prop.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [str(t) for t in kind]
    found: list[str] = []
    for variant in [*prop.get("anyOf", []), *prop.get("oneOf", [])]:
        if isinstance(variant, dict):
            found += [t for t in schema_types(variant) if t not in found]
    return found


_NO = object()
_EXPECTED = {
    "integer": N_("an integer"),
    "number": N_("a number"),
    "boolean": N_("a boolean (true/false)"),
    "array": N_("a JSON array"),
    "object": N_("a JSON object"),
    "null": "null",
    "string": N_("a string"),
}


def _as(kind: str, raw: str) -> Any:
    text = raw.strip()
    if kind == "string":
        return raw
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            return _NO
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            return _NO
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    if kind == "boolean":
        lowered = text.lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else _NO
    if kind == "null":
        return None if text == "null" else _NO
    if kind in ("array", "object"):
        try:
            value = json.loads(text)
        except ValueError:
            return _NO
        return value if isinstance(value, list if kind == "array" else dict) else _NO
    return _NO


def summary(tool: dict[str, Any]) -> str:
    """A tool's arguments in one line: `text*: string, count: integer` (* = required)."""
    schema = _dict(tool.get("inputSchema"))
    properties = _dict(schema.get("properties"))
    required = set(schema.get("required") or [])
    parts = []
    for key, prop in properties.items():
        types = "|".join(schema_types(prop)) if isinstance(prop, dict) else ""
        parts.append(f"{key}{'*' if key in required else ''}: {types or 'any'}")
    return ", ".join(parts)


def result_text(result: dict[str, Any]) -> str:
    """A tool result for people: text as is, images and audio noted, structured content as JSON
    (unless the text already says the same)."""
    lines: list[str] = []
    texts: list[str] = []
    for item in result.get("content") or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "text":
            texts.append(str(item.get("text", "")))
            lines.append(texts[-1])
        elif kind in ("image", "audio"):
            size = len(str(item.get("data", ""))) * 3 // 4
            lines.append(f"[{kind}: {item.get('mimeType', '?')}, {size} bytes]")
        elif kind == "resource":
            resource = _dict(item.get("resource"))
            lines.append(str(resource.get("text")) if "text" in resource else f"[resource: {resource.get('uri')}]")
        elif kind == "resource_link":
            lines.append(f"[link: {item.get('uri')}] {item.get('name', '')}".rstrip())
        else:
            lines.append(json.dumps(item))
    structured = result.get("structuredContent")
    if structured is not None and not _said(structured, texts):
        lines.append(json.dumps(structured, indent=2, ensure_ascii=False))
    return "\n".join(lines)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _said(structured: Any, texts: list[str]) -> bool:
    """Whether the text content already carries the structured content (servers often send both)."""
    if isinstance(structured, dict) and set(structured) == {"result"}:
        inner = structured["result"]
        if (inner if isinstance(inner, str) else json.dumps(inner)) in texts:
            return True
    for text in texts:
        try:
            if json.loads(text) == structured:
                return True
        except ValueError:
            continue
    return False
