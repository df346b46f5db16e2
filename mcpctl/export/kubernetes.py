"""`mcpctl export kubernetes`: per server a Deployment running `mcpctl run NAME` in the image that
examples/Containerfile builds, a Secret with placeholder values for every variable it needs from outside
(the Deployment reads them by secretKeyRef), and a Service when a `url` server listens on a port.

Probes mean MCP-ready: `mcpctl check NAME` exits 0 only when the server answered its handshake and
its pings. Kubernetes restarts the container whenever it ends (a Deployment allows only
restartPolicy: Always); mcpctl's own policy restarts the server inside it.
"""

from __future__ import annotations

import math
from typing import Any

from mcpctl.constants import ENV_HOME, STDIN_CLOSE_GRACE
from mcpctl.export.emit import document
from mcpctl.export.needs import IMAGE_CONFIG, IMAGE_HOME, PLACEHOLDER, Needs, dns_name

_LABEL = "app.kubernetes.io/instance"


def manifests(needs: Needs, image: str, namespace: str | None) -> str:
    """The YAML documents for one server."""
    name = f"mcpctl-{dns_name(needs.server.name)}"
    docs = []
    if needs.variables:
        docs.append(document(_secret(needs, name, namespace), _secret_comments(needs)))
    docs.append(document(_deployment(needs, name, image, namespace), [f"mcpctl server {needs.server.name!r}"]))
    if needs.port is not None:
        note = [f"{needs.server.name} listens on {needs.port}: inside the pod it must listen on 0.0.0.0"]
        docs.append(document(_service(needs, name, namespace), note))
    return "".join(docs)


def _meta(name: str, namespace: str | None, server: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/name": "mcpctl", _LABEL: dns_name(server)}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _secret_comments(needs: Needs) -> list[str]:
    return [
        f"{needs.server.name}: {', '.join(needs.variables)} (required or referenced by the config).",
        f"Placeholders only: set the real values in the cluster, never in this file ({PLACEHOLDER}).",
    ]


def _secret(needs: Needs, name: str, namespace: str | None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(name, namespace, needs.server.name),
        "type": "Opaque",
        "stringData": dict.fromkeys(needs.variables, PLACEHOLDER),
    }


def check_command(server: str) -> list[str]:
    return ["mcpctl", "-f", IMAGE_CONFIG, "check", server]


def _container(needs: Needs, image: str, name: str) -> dict[str, Any]:
    s = needs.server
    env: list[dict[str, Any]] = [{"name": ENV_HOME, "value": IMAGE_HOME}]
    env += [{"name": var, "valueFrom": {"secretKeyRef": {"name": name, "key": var}}} for var in needs.variables]
    period = max(1, math.ceil(s.health_interval))
    probe = {"exec": {"command": check_command(s.name)}, "periodSeconds": period, "timeoutSeconds": 10}
    container: dict[str, Any] = {
        "name": "server",
        "image": image,
        "args": ["run", s.name, "--log-format", "json"],
        "env": env,
        "startupProbe": {**probe, "periodSeconds": 2, "failureThreshold": math.ceil(s.startup_timeout / 2) + 5},
        "readinessProbe": probe,
        "livenessProbe": {**probe, "failureThreshold": max(3, s.unhealthy_after + 1)},
        "volumeMounts": [{"name": "state", "mountPath": IMAGE_HOME}],
    }
    if needs.port is not None:
        container["ports"] = [{"name": "mcp", "containerPort": needs.port}]
    return container


def _deployment(needs: Needs, name: str, image: str, namespace: str | None) -> dict[str, Any]:
    s = needs.server
    labels = {"app.kubernetes.io/name": "mcpctl", _LABEL: dns_name(s.name)}
    grace = math.ceil(s.stop_timeout + STDIN_CLOSE_GRACE + 10)
    pod = {
        "terminationGracePeriodSeconds": grace,
        "containers": [_container(needs, image, name)],
        "volumes": [{"name": "state", "emptyDir": {}}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, namespace, s.name),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},  # one instance of a server at a time, as on one machine
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def _service(needs: Needs, name: str, namespace: str | None) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "mcpctl", _LABEL: dns_name(needs.server.name)}
    port = {"name": "mcp", "port": needs.port, "targetPort": "mcp"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, namespace, needs.server.name),
        "spec": {"selector": labels, "ports": [port]},
    }
