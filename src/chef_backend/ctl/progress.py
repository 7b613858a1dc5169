"""Progress of a long copy (base backup, backup, restore): a live line with an estimate on a
terminal, a plain line every 10 s otherwise (logs, CI)."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path


def tree_bytes(path: Path) -> int:
    """Bytes of every file under `path` (0 while it does not exist)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def describe(done: int, total: int | None, elapsed: float) -> str:
    mb = done / 1048576
    if not total:
        return f"{mb:.0f} MB copied, {elapsed:.0f}s"
    share = min(done / total, 1.0)
    left = f", about {elapsed / share - elapsed:.0f}s left" if share > 0.02 and elapsed > 2 else ""
    return f"{mb:.0f} of {total / 1048576:.0f} MB ({share:.0%}){left}"


class Progress:
    """Report `measure()` against `total` while a step runs: `with Progress(...): step()`."""

    def __init__(self, what: str, measure: Callable[[], int], total: int | None, stream=None) -> None:
        self.what, self.measure, self.total = what, measure, total
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self.stop = threading.Event()
        self.started = 0.0
        self.thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        interval = 0.5 if self.live else 10.0
        while not self.stop.wait(interval):
            line = f"{self.what}: {describe(self.measure(), self.total, time.monotonic() - self.started)}"
            self.stream.write(f"\r\033[K{line}" if self.live else line + "\n")
            self.stream.flush()

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        if self.live:
            self.stream.write("\r\033[K")
        self.stream.write(f"{self.what}: done in {time.monotonic() - self.started:.1f}s\n")
        self.stream.flush()
