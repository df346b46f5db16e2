"""How fast the CLI itself starts, and what `mcpctl status` imports.

Times `mcpctl --help` and `mcpctl --version` (median and p90 of 20 wall-clock runs each, after one warm-up),
next to the bare interpreter (`python -c pass`) as the floor. Target: <= 100 ms.

Then runs `python -X importtime -m mcpctl ...` for --help, --version and `status` (with the demo server
running, so every status code path runs) and reports whether the mcp SDK (`mcp`, `mcp_types`) was imported
- it must not be - along with its heavy dependencies (pydantic, anyio) and rich, and the costliest imports.
"""

from __future__ import annotations

import subprocess
import sys
import time

import _common as c

RUNS = 20
TARGET_S = 0.100
WATCHED = {
    "mcp SDK (mcp, mcp_types)": ("mcp", "mcp_types"),
    "pydantic": ("pydantic", "pydantic_core"),
    "anyio": ("anyio",),
    "rich": ("rich",),
    "typer": ("typer",),
    "psutil": ("psutil",),
}


def wall(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    subprocess.run(argv, env=env, capture_output=True, check=False)  # warm-up
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=False)
        samples.append(time.perf_counter() - began)
    return samples


def imports(box: c.Sandbox, *args: str) -> tuple[dict[str, tuple[int, int]], int]:
    """{module: (self µs, cumulative µs)} from -X importtime, and the command's exit code."""
    argv = [sys.executable, "-X", "importtime", "-m", "mcpctl", "-f", str(box.config), *args]
    subprocess.run(argv, env=box.env, capture_output=True, check=False)  # warm-up: bytecode cache
    result = subprocess.run(argv, env=box.env, capture_output=True, text=True, check=False)
    found: dict[str, tuple[int, int]] = {}
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|", 2)
        found[name.strip()] = (int(own), int(cumulative))
    return found, result.returncode


def top_level(name: str) -> str:
    return name.split(".", 1)[0]


def main() -> None:
    c.header("CLI startup: `mcpctl --help` / `--version`, and what `mcpctl status` imports")
    with c.Sandbox([("demo", c.DEMO_SERVER)]) as box:
        floor = wall([sys.executable, "-c", "pass"], box.env, RUNS)
        helps = wall([*c.mcpctl_argv(), "--help"], box.env, RUNS)
        versions = wall([*c.mcpctl_argv(), "--version"], box.env, RUNS)
        print(f"{RUNS} runs each (after 1 warm-up)\n")
        c.print_table(
            ["what", "median", "p90", "target"],
            [
                ["python -c pass (interpreter floor)", c.ms(c.median(floor)), c.ms(c.p90(floor)), ""],
                [
                    "mcpctl --help",
                    c.ms(c.median(helps)),
                    c.ms(c.p90(helps)),
                    f"<= 100 ms  {c.verdict(c.median(helps), TARGET_S)}",
                ],
                [
                    "mcpctl --version",
                    c.ms(c.median(versions)),
                    c.ms(c.p90(versions)),
                    f"<= 100 ms  {c.verdict(c.median(versions), TARGET_S)}",
                ],
            ],
        )

        box.run("start", "demo", check=True)
        commands = {
            "--help": ("--help",),
            "--version": ("--version",),
            "status": ("status",),
            "status --json": ("status", "--json"),
        }
        results = {label: imports(box, *args) for label, args in commands.items()}

    print()
    print("modules imported (python -X importtime -m mcpctl ...; status ran with the demo server ready)")
    print("ms = the summed self time of the package's modules under -X importtime (which inflates it)\n")
    headers = ["package", *commands]
    rows = []
    for label, prefixes in WATCHED.items():
        row = [label]
        for found, _code in results.values():
            hit = [n for n in found if top_level(n) in prefixes]
            cost = sum(found[n][0] for n in hit)  # self time of each of its modules
            row.append(f"yes: {len(hit)} modules, {cost / 1000:.0f} ms" if hit else "no")
        rows.append(row)
    rows.append(["total modules", *(str(len(found)) for found, _ in results.values())])
    rows.append(["exit code", *(str(code) for _, code in results.values())])
    c.print_table(headers, rows)

    status_found, _ = results["status"]
    sdk = sorted(n for n in status_found if top_level(n) in ("mcp", "mcp_types"))
    print()
    print(f"`mcpctl status` imports the mcp SDK: {'YES (must not!) ' + ', '.join(sdk[:5]) if sdk else 'no (good)'}")
    print()
    print("costliest top-level imports of `mcpctl status` (cumulative):")
    roots = sorted(
        ((cum, name) for name, (_own, cum) in status_found.items() if "." not in name),
        reverse=True,
    )[:8]
    c.print_table(["module", "cumulative"], [[name, f"{cum / 1000:.1f} ms"] for cum, name in roots])


if __name__ == "__main__":
    main()
