"""mcpctl next to supervisord, in one run, managing the same fixture MCP servers on this machine.

Cases: bench/tiny_server.py x1, examples/demo_server.py (mcp SDK) x1, bench/tiny_server.py x50. For each,
three private set-ups are open at once and their rounds interleave (mcpctl, supervisord startsecs=1,
supervisord startsecs=0, then again), so a change in the machine's load hits all three alike:

- mcpctl: `start --all` (returns after every server completed the MCP initialize handshake), `stop --all`.
- supervisord (own supervisord.conf, unix socket, autostart off, stopasgroup/killasgroup, stopwaitsecs 5):
  `supervisorctl start all`, which returns when every program is RUNNING, i.e. has stayed alive for
  startsecs (1 s, supervisord's default, or 0); `supervisorctl stop all`. RUNNING says nothing about MCP.
  With startsecs=0 the bench also sends each server an initialize through supervisord's XML-RPC
  sendProcessStdin and waits for the answer in the stdout log: that is as close to "MCP-ready" as
  supervisord gets. The bench does the handshake itself, in-process; no MCP client can use that path.

In the first round, with the servers running: `mcpctl status` and `status --json` vs `supervisorctl
status` (median and p90 of 10 after a warm-up), and the memory of the supervising processes (every shim
vs the one daemon; RSS, USS, PSS summed with psutil) ~1 s after the start. Start and stop figures are
medians over the rounds. Ratios are mcpctl / supervisord: below 1 means mcpctl is faster or smaller.

Needs supervisor installed in this Python (`pip install supervisor`); without it, says so and exits 0.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import _common as c
import _supervisord as sv

CASES = (
    ("tiny_server.py", c.TINY_SERVER, 1, 5),
    ("demo_server.py", c.DEMO_SERVER, 1, 5),
    ("tiny_server.py", c.TINY_SERVER, 50, 2),
)
RUNS = 10
SETTLE_S = 1.0


@dataclass
class Figures:
    start: list[float] = field(default_factory=list)
    mcp: list[float] = field(default_factory=list)
    stop: list[float] = field(default_factory=list)
    status: list[float] = field(default_factory=list)
    status_json: list[float] = field(default_factory=list)
    ready: list[int] = field(default_factory=list)  # per round
    supervisor: c.Memory | None = None
    servers: c.Memory | None = None


def mcpctl_round(box: c.Sandbox, fig: Figures, first: bool) -> None:
    fig.start.append(box.timed("start", "--all", timeout=300)[0])
    fig.ready.append(box.ready_count())
    if first:
        time.sleep(SETTLE_S)
        records = box.status_json()
        fig.supervisor = c.memory_of(r["shim_pid"] for r in records if r.get("shim_pid"))
        fig.servers = c.memory_of(r["pid"] for r in records if r.get("pid"))
        fig.status = box.sample("status", runs=RUNS)
        fig.status_json = box.sample("status", "--json", runs=RUNS)
    fig.stop.append(box.timed("stop", "--all", timeout=300)[0])


def supervisord_round(daemon: sv.Supervisord, fig: Figures, first: bool, probe: bool) -> None:
    began = time.perf_counter()
    fig.start.append(daemon.timed("start", "all", timeout=300)[0])
    if probe:
        fig.ready.append(daemon.probe_mcp())
        fig.mcp.append(time.perf_counter() - began)
    else:
        fig.ready.append(daemon.running())
    if first and not probe:
        time.sleep(SETTLE_S)
        daemon_pid, server_pids = daemon.pids()
        fig.supervisor = c.memory_of([daemon_pid])
        fig.servers = c.memory_of(server_pids)
        fig.status = daemon.sample("status", runs=RUNS)
    fig.stop.append(daemon.timed("stop", "all", timeout=300)[0])


def ratio(ours: float | None, theirs: float | None) -> str:
    return "-" if not ours or not theirs else f"{ours / theirs:.2f}x"


def time_row(what: str, ours: list[float], theirs: list[float], pick: str = "median") -> list[str]:
    measure = c.p90 if pick == "p90" else c.median
    a, b = (measure(s) if s else None for s in (ours, theirs))
    return [what, c.ms(a), c.ms(b), ratio(a, b)]


def memory_rows(count: int, ours: Figures, theirs: Figures) -> list[list[str]]:
    a, b = ours.supervisor or c.Memory(0, 0, 0, 0), theirs.supervisor or c.Memory(0, 0, 0, 0)
    rows = [["supervising processes", f"{a.processes} shim(s)", f"{b.processes} daemon", ""]]
    for label, x, y in (("RSS", a.rss, b.rss), ("USS", a.uss, b.uss), ("PSS", a.pss, b.pss)):
        rows.append([f"  {label}, sum", c.mb(x), c.mb(y), ratio(x, y)])
    for label, x, y in (("RSS", a.rss, b.rss), ("USS", a.uss, b.uss)):
        rows.append([f"  {label} per managed server", c.mb(x / count), c.mb(y / count), ""])
    servers_a, servers_b = ours.servers, theirs.servers
    if servers_a and servers_b:
        rows.append(["managed servers' RSS, sum (same fixture)", c.mb(servers_a.rss), c.mb(servers_b.rss), ""])
    return rows


def run_case(script: Path, count: int, rounds: int) -> tuple[list[list[str]], list[str]]:
    servers = [(f"{script.stem.split('_')[0]}{i:02d}", script) for i in range(count)]
    ours, slow, fast = Figures(), Figures(), Figures()
    with contextlib.ExitStack() as stack:
        box = stack.enter_context(c.Sandbox(servers))
        one = stack.enter_context(sv.Supervisord(servers, startsecs=1))
        zero = stack.enter_context(sv.Supervisord(servers, startsecs=0))
        boots = [one.boot(), zero.boot()]
        for n in range(rounds):
            print(f"  round {n + 1}/{rounds}", file=sys.stderr, flush=True)
            mcpctl_round(box, ours, n == 0)
            supervisord_round(one, slow, n == 0, probe=False)
            supervisord_round(zero, fast, n == 0, probe=True)
    rows = [
        time_row("start: mcpctl ready vs RUNNING (startsecs=1)", ours.start, slow.start),
        time_row("start: mcpctl ready vs RUNNING (startsecs=0)", ours.start, fast.start),
        time_row("start: mcpctl ready vs s=0 + initialize answered", ours.start, fast.mcp),
        time_row("stop all", ours.stop, slow.stop + fast.stop),
        time_row("status (median)", ours.status, slow.status),
        time_row("status (p90)", ours.status, slow.status, "p90"),
        time_row("status --json (median) vs status", ours.status_json, slow.status),
        time_row("status --json (p90) vs status", ours.status_json, slow.status, "p90"),
        *memory_rows(count, ours, slow),
        [
            "fewest ready / RUNNING (s=1) / answered (s=0)",
            f"{min(ours.ready)}/{count}",
            f"{min(slow.ready)}/{count}, {min(fast.ready)}/{count}",
            "",
        ],
        ["supervisord boot / shutdown (s=1)", "-", f"{c.ms(boots[0])} / {c.ms(one.shutdown_s)}", ""],
        ["processes left behind", str(len(box.leftovers)), str(len(one.leftovers) + len(zero.leftovers)), ""],
    ]
    return rows, [
        f"{len(ours.start)} start/stop rounds per set-up",
        f"stop all: median of {len(slow.stop + fast.stop)} for supervisord",
    ]


def warm_up() -> None:
    """Untimed: page cache, bytecode cache, both servers' imports, for both tools."""
    servers = [("tiny", c.TINY_SERVER), ("demo", c.DEMO_SERVER)]
    with c.Sandbox(servers) as box, sv.Supervisord(servers, startsecs=0) as daemon:
        box.run("start", "--all")
        box.run("status")
        box.run("stop", "--all")
        daemon.boot()
        daemon.run("start", "all")
        daemon.run("status")
        daemon.run("stop", "all")


def main() -> None:
    if not sv.installed():
        print(
            f"supervisor is not installed for {sys.executable}: `pip install supervisor` into this venv, then run again"
        )
        return
    c.header("mcpctl vs supervisord: the same MCP servers, start / stop / status / memory")
    print(f"supervisor {importlib.metadata.version('supervisor')}; progress on stderr\n")
    warm_up()
    for name, script, count, rounds in CASES:
        print(f"{name} x{count}", file=sys.stderr, flush=True)
        rows, notes = run_case(script, count, rounds)
        print(f"-- {name} x{count} ({'; '.join(notes)})")
        c.print_table(["what", "mcpctl", "supervisord", "mcpctl/supervisord"], rows)
        print(flush=True)
    print(LEGEND)


LEGEND = """\
what the numbers mean:
- mcpctl start: wall time of `mcpctl start --all`, which returns once every server answered the MCP
  initialize handshake (its shim did it); the server is then usable by any MCP client via the shim.
- supervisord start: wall time of `supervisorctl start all`, which returns when every program is RUNNING:
  alive for startsecs. Nothing about MCP: a server alive but not answering counts. The ready row counts, after
  each round's start (fewest over the rounds): mcpctl `status --json` ready; supervisorctl status RUNNING.
- s=0 + initialize answered: startsecs=0, then the bench sends an initialize through supervisord's
  sendProcessStdin and polls each stdout log for the answer (in-process: no interpreter start-up, unlike
  the mcpctl figure). No MCP client can attach to a supervisord-managed stdio server this way.
- stop: `mcpctl stop --all` (close stdin, then SIGTERM the group) vs `supervisorctl stop all` (SIGTERM to
  the group); both wait until the processes are gone. supervisord notices exits in its main loop, which
  wakes at least once a second: ~1 s is its floor here, whatever the server does.
- status: mcpctl reconciles every record with the live processes; supervisorctl asks its daemon.
- memory: the supervising processes only (mcpctl: one shim per server; supervisord: one daemon),
  ~1 s after the start, summed; USS = private memory, what stopping them would give back."""


if __name__ == "__main__":
    main()
