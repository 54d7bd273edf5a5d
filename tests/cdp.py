"""A tiny Chrome DevTools Protocol client for tests: headless Chromium driven over
--remote-debugging-pipe (fd 3 carries commands in, fd 4 replies out, NUL-separated JSON).

    with Browser() as b:
        page = b.open("file:///tmp/page.html")
        page.eval("document.title")
        page.click("#player-0 button.step")
        png = page.screenshot()
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    def __init__(self, timeout: float = 30.0):
        self.timeout, self.next_id, self.buffer = timeout, 0, b""

    def __enter__(self):
        self.profile = tempfile.mkdtemp(prefix="cdp-")
        cmd_r, cmd_w = os.pipe()          # we write commands -> chromium reads fd 3
        out_r, out_w = os.pipe()          # chromium writes fd 4 -> we read
        def child_fds():                  # noqa: E306
            a, b = os.dup(cmd_r), os.dup(out_w)   # above 4, so the two dup2 cannot clobber each other
            os.dup2(a, 3)
            os.dup2(b, 4)
        self.proc = subprocess.Popen(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             f"--user-data-dir={self.profile}", "--no-first-run", "--disable-extensions", "about:blank"],
            pass_fds=(3, 4), preexec_fn=child_fds, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.profile, 'stderr.txt'), 'wb'))
        os.close(cmd_r)
        os.close(out_w)
        self.wfd, self.rfd = cmd_w, out_r
        return self

    def __exit__(self, *exc):
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.wfd)
        os.close(self.rfd)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _message(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no reply from Chromium")
            chunk = os.read(self.rfd, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self.wfd, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str) -> "Page":
        target = self.send("Target.createTarget", url=url)["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        page = Page(self, session)
        deadline = time.monotonic() + self.timeout
        ready = f"location.href === {json.dumps(url)} && document.readyState === 'complete'"
        while not page.eval(ready):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading")
            time.sleep(0.05)
        return page


class Page:
    def __init__(self, browser: Browser, session: str):
        self.browser, self.session = browser, session

    def eval(self, expression: str):
        r = self.browser.send("Runtime.evaluate", self.session, expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def click(self, selector: str):
        """A real mouse click at the element's centre (Input.dispatchMouseEvent)."""
        box = self.eval(f"(function(){{var r=document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                        f"return [r.left + r.width/2, r.top + r.height/2];}})()")
        for kind in ("mousePressed", "mouseReleased"):
            self.browser.send("Input.dispatchMouseEvent", self.session, type=kind, x=box[0], y=box[1],
                              button="left", clickCount=1)

    def scroll_to(self, selector: str):
        self.eval(f"document.querySelector({json.dumps(selector)}).scrollIntoView({{block: 'center'}})")

    def screenshot(self) -> bytes:
        return base64.b64decode(self.browser.send("Page.captureScreenshot", self.session, format="png")["data"])
