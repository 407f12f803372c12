"""Open a report in headless Chromium and say what a reader would see.

Used by the browser test and `bench/screenshot_report.py`. Chromium is driven
through the DevTools protocol over `--remote-debugging-pipe` (NUL-separated JSON
on file descriptors 3 and 4), which needs no port, no websocket library and no
browser-automation package. That lets the check ask the browser directly
whether every embedded image decoded (`naturalWidth`), collect console errors,
uncaught exceptions and Content-Security-Policy violations as structured events
(rather than scraping log text), and take a screenshot, all without any script
in the page: DevTools evaluation is not subject to the page's CSP.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

FLAGS = (
    "--headless",
    "--no-sandbox",  # containers and CI run as root; the page is our own, script-free file
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)

_PAGE_PROBE = """JSON.stringify({
  title: document.title,
  text: document.body ? document.body.innerText : "",
  images: Array.from(document.images).map(i => ({
    src: i.getAttribute("src").slice(0, 40), complete: i.complete,
    width: i.naturalWidth, height: i.naturalHeight, alt: i.alt})),
  scripts: document.scripts.length,
  height: document.documentElement.scrollHeight,
  ids: Array.from(document.querySelectorAll("section[id]")).map(s => s.id),
})"""


class BrowserError(RuntimeError):
    """Chromium could not be started or did not answer."""


def find_chromium() -> str | None:
    """The first Chromium-like browser on PATH (or in $CHROMIUM), else None."""
    explicit = os.environ.get("CHROMIUM")
    if explicit and shutil.which(explicit):
        return shutil.which(explicit)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageReport:
    title: str
    text: str  # the rendered text (innerText)
    images: list[dict[str, Any]]  # {src (first 40 chars), complete, width, height, alt}
    scripts: int
    height: int  # CSS pixels of the whole page
    section_ids: list[str]
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, CSP blocks
    screenshot: bytes | None = None  # PNG
    probed: Any = None  # the JSON value of the caller's `probe` expression, if given

    @property
    def broken_images(self) -> list[dict[str, Any]]:
        return [i for i in self.images if not i["complete"] or not i["width"]]


class _Pipe:
    """A minimal DevTools client over the two pipes Chromium opens with --remote-debugging-pipe."""

    def __init__(self, rfd: int, wfd: int, timeout: float) -> None:
        self.rfd, self.wfd, self.timeout = rfd, wfd, timeout
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self.wfd, data) :]
        reply = self._wait(lambda m: m.get("id") == self.next_id, f"reply to {method}")
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message', reply['error'])}")
        return reply.get("result", {})

    def wait_event(self, method: str) -> dict[str, Any]:
        return self._wait(lambda m: m.get("method") == method, method)

    def drain(self, seconds: float) -> None:
        """Collect events that arrive within `seconds` (late console messages)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0 and self._read(left):
            pass
        self.events.extend(self._parse())

    def _parse(self) -> list[dict[str, Any]]:
        msgs = []
        while b"\0" in self.buf:
            raw, self.buf = self.buf.split(b"\0", 1)
            msgs.append(json.loads(raw))
        return msgs

    def _wait(self, match, what: str) -> dict[str, Any]:
        """The first message that matches; events seen on the way are kept in `events`."""
        for i, e in enumerate(self.events):
            if match(e):
                return self.events.pop(i)
        end = time.monotonic() + self.timeout
        while True:
            for j, msg in enumerate(batch := self._parse()):
                if match(msg):
                    self.events.extend(m for m in batch[j + 1 :] if "method" in m)
                    return msg
                if "method" in msg:
                    self.events.append(msg)
            left = end - time.monotonic()
            if left <= 0:
                raise BrowserError(f"Chromium did not send {what} within {self.timeout:.0f} s")
            self._read(left)

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.rfd], [], [], timeout)
        if not ready:
            return False
        chunk = os.read(self.rfd, 1 << 20)
        if not chunk:
            raise BrowserError("Chromium closed the DevTools pipe (it crashed or exited)")
        self.buf += chunk
        return True


def _errors(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            out.append(f"{entry.get('source')}: {entry.get('text')}")
        elif method == "Runtime.exceptionThrown":
            details = p.get("exceptionDetails", {})
            out.append(f"exception: {details.get('text')} {details.get('exception', {})}")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", []))
            out.append(f"console.{p['type']}: {args}")
    return out


def inspect_page(
    html_path: str | os.PathLike[str],
    *,
    width: int = 1280,
    height: int = 900,
    scale: float = 1.0,
    screenshot: str = "none",
    chromium: str | None = None,
    timeout: float = 60.0,
    probe: str | None = None,
    media: str | None = None,
) -> PageReport:
    """Load a local HTML file in headless Chromium and report what rendered.

    `screenshot`: "none", "viewport" (width x height CSS pixels) or "full" (the whole
    page); `scale` is the device pixel ratio of the screenshot. `probe`: a JavaScript
    expression evaluated in the loaded page through DevTools (not subject to the page's
    CSP; the page itself stays script-free) whose JSON-serialisable value is returned as
    `probed`, e.g. element measurements for the layout test. `media`: a CSS media type
    to emulate ("print" applies the print stylesheet).
    """
    browser = chromium or find_chromium()
    if browser is None:
        raise BrowserError("no Chromium found on PATH; install it (apt-get install chromium)")
    url = Path(html_path).resolve().as_uri()
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    def child_fds() -> None:  # runs in the child before exec: DevTools reads fd 3, writes fd 4
        # Move both ends above 3 and 4 first, so neither dup2 can clobber the other or be a
        # no-op (a no-op dup2 would leave the close-on-exec flag set).
        a = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        b = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.dup2(a, 3)
        os.dup2(b, 4)

    with tempfile.TemporaryDirectory(prefix="reidbench-chromium-") as profile:
        log = open(Path(profile) / "stderr.log", "wb")  # noqa: SIM115 (closed below)
        try:
            proc = subprocess.Popen(
                [browser, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                close_fds=False,  # fds 3 and 4 must survive; Python's own fds are close-on-exec
                preexec_fn=child_fds,
            )
        finally:
            os.close(to_chrome_r)
            os.close(from_chrome_w)
        pipe = _Pipe(from_chrome_r, to_chrome_w, timeout)
        try:
            return _inspect(pipe, url, width, height, scale, screenshot, probe, media)
        finally:
            with contextlib.suppress(OSError):  # already gone: nothing to close
                os.write(
                    to_chrome_w, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0"
                )
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            os.close(from_chrome_r)
            os.close(to_chrome_w)
            log.close()


def _inspect(
    pipe: _Pipe,
    url: str,
    width: int,
    height: int,
    scale: float,
    screenshot: str,
    extra_probe: str | None = None,
    media: str | None = None,
) -> PageReport:
    target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        pipe.send(f"{domain}.enable", session=session)
    metrics = {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": False}
    pipe.send("Emulation.setDeviceMetricsOverride", metrics, session)
    if media:
        pipe.send("Emulation.setEmulatedMedia", {"media": media}, session)
    pipe.send("Page.navigate", {"url": url}, session)
    pipe.wait_event("Page.loadEventFired")
    probe = pipe.send(
        "Runtime.evaluate", {"expression": _PAGE_PROBE, "returnByValue": True}, session
    )
    data = json.loads(probe["result"]["value"])
    probed = None
    if extra_probe:
        answer = pipe.send(
            "Runtime.evaluate",
            {"expression": f"JSON.stringify({extra_probe})", "returnByValue": True},
            session,
        )
        if "exceptionDetails" in answer:
            raise BrowserError(f"probe failed: {answer['exceptionDetails'].get('text')}")
        probed = json.loads(answer["result"]["value"])
    shot = None
    if screenshot == "full":
        pipe.send(
            "Emulation.setDeviceMetricsOverride",
            {**metrics, "height": int(data["height"])},
            session,
        )
    if screenshot in ("full", "viewport"):
        shot = base64.b64decode(
            pipe.send("Page.captureScreenshot", {"format": "png"}, session)["data"]
        )
    pipe.drain(0.3)
    return PageReport(
        title=data["title"],
        text=data["text"],
        images=data["images"],
        scripts=int(data["scripts"]),
        height=int(data["height"]),
        section_ids=list(data["ids"]),
        errors=_errors(pipe.events),
        screenshot=shot,
        probed=probed,
    )
