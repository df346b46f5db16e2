"""`mcpctl export kubernetes`: per server a Deployment running `mcpctl run NAME` in the image that
examples/Containerfile builds, a Secret with placeholder values for every variable it needs from outside
(the Deployment reads them by secretKeyRef), one with a placeholder file for each env_file (mounted where
the config in the image reads it), and a Service when a `url` server listens on a port.

Probes mean MCP-ready: `mcpctl check NAME` exits 0 only when the server answered its handshake and
its pings. Kubernetes restarts the container whenever it ends (a Deployment allows only
restartPolicy: Always); mcpctl's own policy restarts the server inside it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from mcpctl.constants import ENV_HOME, STDIN_CLOSE_GRACE
from mcpctl.export.emit import document
from mcpctl.export.needs import (
    IMAGE_CONFIG,
    IMAGE_HOME,
    IMAGE_UID,
    PLACEHOLDER,
    Needs,
    dns_name,
    placeholder_env_file,
)

_LABEL = "app.kubernetes.io/instance"


def manifests(needs: Needs, image: str, namespace: str | None) -> str:
    """The YAML documents for one server."""
    name = f"mcpctl-{dns_name(needs.server.name)}"
    docs = []
    if needs.variables:
        docs.append(document(_secret(needs, name, namespace), _secret_comments(needs)))
    if needs.env_files:
        docs.append(document(_files_secret(needs, name, namespace), _files_comments(needs)))
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


def _files_comments(needs: Needs) -> list[str]:
    files = ", ".join(map(str, needs.env_files))
    return [
        f"{needs.server.name}: its env_file ({files}), mounted where the config in the image reads it.",
        f"Placeholders only: set the real values in the cluster, never in this file ({PLACEHOLDER}).",
    ]


def _file_keys(needs: Needs) -> list[str]:
    """A Secret key per env_file: its name, made a valid key, numbered when two are alike."""
    keys: list[str] = []
    for number, path in enumerate(needs.env_files):
        key = re.sub(r"[^-._a-zA-Z0-9]+", "_", path.name).lstrip(".") or "env"
        keys.append(key if key not in keys else f"{number}-{key}")
    return keys


def _files_secret(needs: Needs, name: str, namespace: str | None) -> dict[str, Any]:
    files = {key: placeholder_env_file(path) for key, path in zip(_file_keys(needs), needs.env_files, strict=True)}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(f"{name}-env-files", namespace, needs.server.name),
        "type": "Opaque",
        "stringData": files,
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
    }
    if needs.env_files:
        container["volumeMounts"] = _file_mounts(needs)
    if needs.port is not None:
        container["ports"] = [{"name": "mcp", "containerPort": needs.port}]
    return container


def _file_mounts(needs: Needs) -> list[dict[str, Any]]:
    return [
        {"name": "env-files", "mountPath": path, "subPath": key, "readOnly": True}
        for key, path in zip(_file_keys(needs), needs.image_env_files, strict=True)
    ]


def _deployment(needs: Needs, name: str, image: str, namespace: str | None) -> dict[str, Any]:
    s = needs.server
    labels = {"app.kubernetes.io/name": "mcpctl", _LABEL: dns_name(s.name)}
    grace = math.ceil(s.stop_timeout + STDIN_CLOSE_GRACE + 10)
    pod: dict[str, Any] = {
        "terminationGracePeriodSeconds": grace,
        # The Containerfile's user. The state dir is in the image's own folder of that user, not in a volume:
        # an emptyDir is 0777 (and root's), a folder anyone could rename the state dir out of, which mcpctl
        # refuses above a state dir; what the state dir holds lives as long as the container, as the shim does.
        "securityContext": {
            "runAsUser": IMAGE_UID,
            "runAsGroup": IMAGE_UID,
            "fsGroup": IMAGE_UID,
            "runAsNonRoot": True,
        },
        "containers": [_container(needs, image, name)],
    }
    if needs.env_files:  # read-only for all: root's, as mcpctl's trust rules want an env_file
        pod["volumes"] = [{"name": "env-files", "secret": {"secretName": f"{name}-env-files", "defaultMode": 0o444}}]
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
