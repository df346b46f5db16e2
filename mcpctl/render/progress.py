"""While a command waits for servers to start: a spinner with the elapsed time on a terminal, a plain
line now and then otherwise (CI logs), nothing with --quiet. Always on stderr: stdout stays for results."""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType

from mcpctl.hints import TYPE_CHECKING
from mcpctl.i18n import _

if TYPE_CHECKING:
    from typing import TextIO

FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
SPINNER_AFTER = 0.5  # a start faster than this shows no spinner at all
LINE_AFTER = 5.0  # off a terminal: the first "still waiting" line, then one every LINE_EVERY
LINE_EVERY = 10.0


class Waiting:
    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.shown = False
        self.began = time.monotonic()

    def __enter__(self) -> Waiting:
        if self.enabled:
            self.thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join()
        if self.shown and self.tty:
            self.stream.write("\r\x1b[2K")  # clear the spinner's line before the results are printed
            self.stream.flush()

    def _run(self) -> None:
        if self.tty:
            self._spin()
        else:
            self._lines()

    def _spin(self) -> None:
        if self.done.wait(SPINNER_AFTER):
            return
        frame = 0
        while not self.done.is_set():
            elapsed = time.monotonic() - self.began
            self.stream.write(f"\r{FRAMES[frame % len(FRAMES)]} {self.label} {elapsed:.1f}s")
            self.stream.flush()
            self.shown = True
            frame += 1
            self.done.wait(0.1)

    def _lines(self) -> None:
        wait = LINE_AFTER
        while not self.done.wait(wait):
            waited = f"{time.monotonic() - self.began:.0f}"
            self.stream.write(_("{label}: still waiting ({seconds}s)").format(label=self.label, seconds=waited) + "\n")
            self.stream.flush()
            wait = LINE_EVERY
