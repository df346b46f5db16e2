"""`/mcp` and `/groups/GROUP/mcp`: one MCP session over several servers.

The gateway answers `initialize` itself and lists the tools, prompts and resources of every member that
serves now (a member that does not is left out, with a log line); a call goes to the member that offers
the name. Aggregates never start a member: `mcpctl start` does, and the member's clients hear
`list_changed` when it comes or goes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mcpctl import __version__, protocol
from mcpctl.constants import MCP_PROTOCOL_VERSION
from mcpctl.gateway import catalog
from mcpctl.gateway.members import Members
from mcpctl.gateway.metrics import GatewayMetrics
from mcpctl.gateway.sessions import Emit, Session
from mcpctl.gateway.upstream import Message, Unavailable, Upstream, lost

LOG = logging.getLogger("mcpctl.gateway")
INVALID_PARAMS = -32602
# list method -> (the result's list, the key naming an item, the capability a member must have)
LISTS = {
    "tools/list": ("tools", "name", "tools"),
    "prompts/list": ("prompts", "name", "prompts"),
    "resources/list": ("resources", "uri", "resources"),
    "resources/templates/list": ("resourceTemplates", "uriTemplate", "resources"),
}
# call method -> (the list that names its target, the param holding the name)
CALLS = {
    "tools/call": ("tools/list", "name"),
    "prompts/get": ("prompts/list", "name"),
    "resources/read": ("resources/list", "uri"),
}
CHANGED = (
    "notifications/tools/list_changed",
    "notifications/prompts/list_changed",
    "notifications/resources/list_changed",
)
RENAMED = ("tools/list", "prompts/list")  # resources keep their URIs: a URI names a thing, not a handle
PAGES = 100  # pages of one member's list, at most


class AggregateSession(Session):
    def __init__(
        self, hub: Members, metrics: GatewayMetrics, token_id: str | None, endpoint: str, members: tuple[str, ...]
    ) -> None:
        super().__init__(hub, metrics, token_id)
        self.endpoint = endpoint
        self.members = members
        self.upstreams: dict[str, Upstream] = {}
        self.routes: dict[str, dict[str, tuple[str, str]]] = {}

    async def request(self, message: Message, emit: Emit) -> Message:
        method, request_id = message.get("method"), message.get("id")
        if method == "initialize":
            self.init_params = message.get("params") or {}
            return protocol.result_response(request_id, self._initialize_result())
        if method in ("ping", "logging/setLevel"):
            return protocol.result_response(request_id, {})
        if method in LISTS:
            key = LISTS[str(method)][0]
            return protocol.result_response(request_id, {key: await self._list(str(method))})
        if method in CALLS:
            return await self._call(str(method), message, emit)
        return protocol.method_not_found(request_id, str(method))

    def _initialize_result(self) -> Message:
        wanted = self.init_params.get("protocolVersion")
        version = wanted if wanted in protocol.KNOWN_VERSIONS else MCP_PROTOCOL_VERSION
        changed = {"listChanged": True}
        return {
            "protocolVersion": version,
            "capabilities": {"tools": changed, "prompts": changed, "resources": changed, "logging": {}},
            "serverInfo": {"name": f"mcpctl-gateway/{self.endpoint}", "version": __version__},
        }

    async def _list(self, method: str) -> list[dict[str, Any]]:
        found = await asyncio.gather(*(self._member_list(name, method) for name in self.members))
        pages = {name: items for name, items in zip(self.members, found, strict=True) if items is not None}
        key = LISTS[method][1]
        if method not in RENAMED:
            seen: dict[str, tuple[str, str]] = {}
            merged = []
            for name, items in pages.items():
                for item in items:
                    if str(item.get(key)) not in seen:  # the first member to offer a URI serves it
                        seen[str(item.get(key))] = (name, str(item.get(key)))
                        merged.append(item)
            self.routes[method] = seen
            return merged
        merged, names = catalog.merge(key, pages)
        self.routes[method] = names
        return merged

    async def _member_list(self, name: str, method: str) -> list[dict[str, Any]] | None:
        upstream = await self._member(name)
        if upstream is None or LISTS[method][2] not in (upstream.init_result.get("capabilities") or {}):
            return None if upstream is None else []
        items: list[dict[str, Any]] = []
        cursor = None
        for _ in range(PAGES):
            try:
                answer = await upstream.request({"method": method, "params": {"cursor": cursor} if cursor else {}})
            except OSError as exc:  # the shim hung up as we asked (a stop, a refusal): the list goes on without it
                upstream.close()
                LOG.warning("%s: left out of %s: %s: %s", name, self.endpoint, method, exc)
                return None
            if "error" in answer:
                LOG.warning("%s: left out of %s: %s answered %s", name, self.endpoint, method, answer["error"])
                return None
            result = answer.get("result") or {}
            items += [i for i in result.get(LISTS[method][0]) or [] if isinstance(i, dict)]
            cursor = result.get("nextCursor")
            if not cursor:
                break
        if method == "tools/list":
            rules = self.hub.config.servers[name].tools
            items = [tool for tool in items if catalog.allowed(str(tool.get("name")), rules)]
        return items

    async def _member(self, name: str) -> Upstream | None:
        upstream = self.upstreams.get(name)
        if upstream is not None and not upstream.closed:
            return upstream
        try:
            upstream = await self.hub.open(name, self.init_params, self.from_server, start=False)
        except Unavailable as exc:
            LOG.info("%s: left out of %s: %s", name, self.endpoint, exc)
            return None
        self.upstreams[name] = upstream
        return upstream

    async def _call(self, method: str, message: Message, emit: Emit) -> Message:
        listing, param = CALLS[method]
        params = message.get("params") or {}
        wanted = str(params.get(param))
        if wanted not in self.routes.get(listing, {}):
            await self._list(listing)  # the client may call what it listed before a member came back
        target = self.routes.get(listing, {}).get(wanted)
        upstream = await self._member(target[0]) if target else None
        if target is None or upstream is None:
            text = f"{self.endpoint} has no {param} {wanted!r} now" if target is None else f"{target[0]} is down"
            return protocol.error_response(message.get("id"), INVALID_PARAMS, text)
        forwarded = {**message, "params": {**params, param: target[1]}}
        try:
            return await self.forward(upstream, forwarded, emit, target[0])
        except OSError:
            upstream.close()
            return lost(message.get("id"), f"the connection to {target[0]} was lost (stopped or restarting)")

    def on_server_notification(self, upstream: Upstream, message: Message) -> None:
        if message.get("method") != "notifications/cancelled":
            self.push(message)

    def member_changed(self, name: str, up: bool) -> None:
        if name not in self.members:
            return
        if not up and name in self.upstreams:
            self.upstreams.pop(name).close()
        for method in CHANGED:
            self.push({"jsonrpc": "2.0", "method": method})

    def close(self) -> None:
        for upstream in self.upstreams.values():
            upstream.close()
