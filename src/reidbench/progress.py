"""Progress reporting that library code can call without knowing about the terminal.

Stages take an optional `Progress`; the CLI passes a rich-backed one, tests
pass nothing (a no-op). Keeping rich out of the stages keeps them importable
and quiet inside other programs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol


class Progress(Protocol):
    def start(self, description: str, total: int | None) -> None: ...

    def advance(self, n: int = 1, **fields: object) -> None: ...

    def finish(self) -> None: ...


# A stage that shows several bars asks for one per step, naming its unit ("img", "call").
ProgressFactory = Callable[[str], "Progress | None"]
# Stages report what they did as plain lines; the CLI prints them to stderr.
Log = Callable[[str], None]


def no_log(_message: str) -> None:
    return None


def no_progress(_unit: str) -> Progress | None:
    return None


class NullProgress:
    def start(self, description: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1, **fields: object) -> None:
        pass

    def finish(self) -> None:
        pass


class RichProgress:
    """done/total, rate, ETA, plus free-form fields such as `cost=$0.12`."""

    def __init__(self, unit: str = "it", console: object | None = None) -> None:
        """`console`: a rich Console; pass a stderr one when stdout carries JSON."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as _RichProgress

        self._unit = unit
        self._progress = _RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[extra]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            transient=False,
            console=console,  # type: ignore[arg-type]
        )
        self._task: object | None = None

    def start(self, description: str, total: int | None) -> None:
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, rate="", extra="")

    def advance(self, n: int = 1, **fields: object) -> None:
        if self._task is None:
            return
        task = self._progress.tasks[-1]
        speed = task.speed
        rate = f"{speed:.1f} {self._unit}/s" if speed else ""
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        update: dict[str, object] = {"advance": n, "rate": rate}
        if extra:
            update["extra"] = extra
        self._progress.update(self._task, **update)  # type: ignore[arg-type]

    def finish(self) -> None:
        if self._task is not None:
            self._progress.stop()
            self._task = None


@contextlib.contextmanager
def reporting(progress: Progress | None, description: str, total: int | None) -> Iterator[Progress]:
    """Start/finish a progress bar around a block; a None progress is a no-op."""
    p = progress or NullProgress()
    p.start(description, total)
    try:
        yield p
    finally:
        p.finish()


class LineProgress:
    """Progress as whole lines, for output that is not a terminal (a pipe, a log file, CI).

    A live bar there is either silent until the end or cut to 80 columns; these lines are
    printed at the start, then at most every `interval_s` seconds, and at the end, each
    complete: `judge gpt-4o: 600/6000 (10%) 4.2 call/s 0:02:23 ETA 0:21:25 cost=$0.31`.
    """

    def __init__(self, unit: str, write: Log, interval_s: float = 10.0) -> None:
        self._unit = unit
        self._write = write
        self._interval = interval_s
        self._description = ""
        self._total: int | None = None
        self._done = 0
        self._fields: dict[str, object] = {}
        self._t0 = self._last = 0.0
        self._active = False

    def start(self, description: str, total: int | None) -> None:
        import time

        self._description, self._total, self._done, self._fields = description, total, 0, {}
        self._t0 = self._last = time.monotonic()
        self._active = True
        self._emit(time.monotonic())

    def advance(self, n: int = 1, **fields: object) -> None:
        import time

        self._done += n
        self._fields.update(fields)
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._emit(now)

    def finish(self) -> None:
        import time

        if self._active:
            self._emit(time.monotonic())
            self._active = False

    def _emit(self, now: float) -> None:
        self._last = now
        elapsed = now - self._t0
        parts = [f"{self._description}: {self._done}"]
        if self._total:
            parts[0] += f"/{self._total} ({100 * self._done / self._total:.0f}%)"
        if elapsed > 0 and self._done:
            rate = self._done / elapsed
            parts.append(f"{rate:.1f} {self._unit}/s")
            parts.append(_clock(elapsed))
            if self._total and self._done < self._total:
                parts.append(f"ETA {_clock((self._total - self._done) / rate)}")
        parts.extend(f"{k}={v}" for k, v in self._fields.items())
        self._write(" ".join(parts))


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
