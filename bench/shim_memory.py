"""What an idle shim costs: memory and CPU of one `python -m mcpctl.shim NAME` process.

Starts the demo server (a first time as a warm-up, stopped, then again), finds the shim through
`mcpctl status --json` (field shim_pid), lets it idle ~2 s, then reads its RSS, USS and PSS (psutil
memory_full_info), and its CPU time and context switches over a 10 s idle window. The server's own RSS
and two bare interpreters are shown for scale. Also lists which compiled extension modules the shim has
mapped (a cheap way to see it did not load pydantic, i.e. the mcp SDK).
Target: <= 15 MB RSS.
"""

from __future__ import annotations

import subprocess
import sys
import time

import _common as c
import psutil

SETTLE_S = 2.0
IDLE_WINDOW_S = 10.0
TARGET_RSS = 15 * 1024 * 1024


def extension_modules(proc: psutil.Process) -> list[str]:
    try:
        maps = proc.memory_maps(grouped=True)
    except (psutil.Error, OSError):
        return ["(memory maps unreadable)"]
    return sorted({m.path.rsplit("/", 1)[-1] for m in maps if "-packages/" in m.path and m.path.endswith(".so")})


def reference_rss(code: str) -> tuple[int | None, str]:
    """RSS of a plain interpreter that ran `code` and then idles (for scale); and what `code` printed."""
    idle = "import sys; sys.stdout.flush(); sys.stdin.read()"
    with subprocess.Popen(
        [sys.executable, "-c", f"{code}; {idle}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=c.bench_env(),
    ) as proc:
        try:
            assert proc.stdout is not None
            printed = proc.stdout.readline().strip()
            time.sleep(0.3)
            return psutil.Process(proc.pid).memory_info().rss, printed
        except psutil.Error:
            return None, ""
        finally:
            proc.communicate(timeout=10)  # closes stdin: it exits


def main() -> None:
    c.header("shim memory and idle CPU")
    with c.Sandbox([("demo", c.DEMO_SERVER)]) as box:
        box.run("start", "demo", check=True)  # warm-up: the first shim may compile and cache bytecode
        box.run("stop", "demo", check=True)
        box.run("start", "demo", check=True)
        record = box.status_json("demo")[0]
        shim = psutil.Process(record["shim_pid"])
        server = psutil.Process(record["pid"]) if record.get("pid") else None
        print(f"shim pid {shim.pid}: {' '.join(shim.cmdline())}")
        time.sleep(SETTLE_S)

        full = shim.memory_full_info()
        server_rss = server.memory_info().rss if server else None
        threads, fds = shim.num_threads(), shim.num_fds()
        cpu_before, ctx_before = shim.cpu_times(), shim.num_ctx_switches()
        began = time.perf_counter()
        time.sleep(IDLE_WINDOW_S)
        window = time.perf_counter() - began
        cpu_after, ctx_after = shim.cpu_times(), shim.num_ctx_switches()
        after = shim.memory_info().rss
        extensions = extension_modules(shim)
        state = box.status_json("demo")[0]["state"]

    bare, bare_modules = reference_rss("import sys; print(len(sys.modules))")
    imported, shim_modules = reference_rss("import sys, mcpctl.shim; print(len(sys.modules))")
    cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    switches = (ctx_after.voluntary - ctx_before.voluntary) + (ctx_after.involuntary - ctx_before.involuntary)
    print()
    c.print_table(
        ["what", "value", "target"],
        [
            ["shim RSS (after ~2 s idle)", c.mb(full.rss), f"<= 15 MB  {c.verdict(full.rss, TARGET_RSS)}"],
            ["shim USS (private memory)", c.mb(full.uss), ""],
            ["shim PSS", c.mb(getattr(full, "pss", None)), ""],
            [f"shim RSS after the {IDLE_WINDOW_S:.0f} s window", c.mb(after), ""],
            [f"shim CPU time over {window:.1f} s idle", f"{cpu * 1000:.1f} ms ({cpu / window:.3%} of a core)", ""],
            [f"shim context switches over {window:.1f} s", f"{switches} ({switches / window:.1f}/s)", ""],
            ["shim threads / open fds", f"{threads} / {fds}", ""],
            ["demo server RSS (for scale)", c.mb(server_rss), ""],
            [f"bare python, idle ({bare_modules} modules)", c.mb(bare), ""],
            [f"python after `import mcpctl.shim`, idle ({shim_modules} modules)", c.mb(imported), ""],
            ["server state after the window", state, ""],
        ],
    )
    print()
    print(f"extension modules mapped by the shim: {', '.join(extensions) or '(none from site-packages)'}")
    sdk = [e for e in extensions if "pydantic" in e]
    print(f"shim loaded pydantic (so probably the mcp SDK): {'YES' if sdk else 'no (good)'}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
