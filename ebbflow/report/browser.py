"""Headless Chromium over the DevTools protocol: print the report to PDF, take a screenshot,
and collect console errors and exceptions (the report's HTML test relies on them).

Chromium is started with `--remote-debugging-port=0`; the DevTools websocket it announces on
stderr is driven with aiohttp. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


class BrowserError(RuntimeError):
    """Chromium is missing, did not start, or a DevTools call failed or timed out."""


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageResult:
    console_errors: list[str] = field(default_factory=list)
    value: Any = None  # what `evaluate` returned
    pdf: bytes | None = None
    png: bytes | None = None


class _Session:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, timeout: float) -> None:
        self.ws = ws
        self.timeout = timeout
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        await self.ws.send_json({"id": call_id, "method": method, "params": params})
        async with asyncio.timeout(self.timeout):
            while True:
                msg = await self.ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise BrowserError(f"DevTools connection closed during {method}")
                data = json.loads(msg.data)
                if data.get("id") == call_id:
                    if "error" in data:
                        raise BrowserError(f"{method}: {data['error'].get('message')}")
                    result: dict[str, Any] = data.get("result", {})
                    return result
                self.events.append(data)

    async def wait_for(self, method: str) -> None:
        if any(e.get("method") == method for e in self.events):
            return
        async with asyncio.timeout(self.timeout):
            while True:
                msg = await self.ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise BrowserError(f"DevTools connection closed waiting for {method}")
                data = json.loads(msg.data)
                self.events.append(data)
                if data.get("method") == method:
                    return

    def console_errors(self) -> list[str]:
        errors = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                args = params.get("args", [])
                errors.append(" ".join(str(a.get("value", a.get("description"))) for a in args))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                errors.append(str(details.get("exception", {}).get("description") or details))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                errors.append(str(params["entry"].get("text")))
        return errors


def page_url(html: Path) -> str:
    return html.resolve().as_uri()


async def open_page(
    url: str,
    pdf: bool = False,
    png: bool = False,
    evaluate: str | None = None,
    width: int = 1000,
    limit: float = 60.0,
) -> PageResult:
    """Load `url` in headless Chromium; optionally print it to PDF, screenshot the whole
    page as PNG, and return the value of the `evaluate` expression."""
    binary = find_chromium()
    if binary is None:
        raise BrowserError("Chromium is not installed (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="ebbflow-chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            binary,
            "--headless=new",
            "--no-sandbox",  # root in containers; the page is our own file
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--remote-debugging-port=0",
            "--remote-allow-origins=*",
            f"--user-data-dir={profile}",
            f"--window-size={width},1200",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        drain: asyncio.Task[None] | None = None
        try:
            browser_url = await _listening(process.stderr, limit)

            async def _drain(stream: asyncio.StreamReader) -> None:
                while await stream.readline():
                    pass

            drain = asyncio.create_task(_drain(process.stderr))
            port = browser_url.split("/")[2]
            async with aiohttp.ClientSession() as http:
                async with asyncio.timeout(limit):
                    async with http.get(f"http://{port}/json/list") as answer:
                        targets = await answer.json()
                page = next((t for t in targets if t.get("type") == "page"), None)
                if page is None:
                    raise BrowserError("Chromium opened no page")
                async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    return await _drive(_Session(ws, limit), url, pdf, png, evaluate, width)
        finally:
            if drain is not None:
                drain.cancel()
            if process.returncode is None:
                process.terminate()
                try:
                    async with asyncio.timeout(10):
                        await process.wait()
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def _listening(stderr: asyncio.StreamReader, limit: float) -> str:
    seen: list[str] = []
    try:
        async with asyncio.timeout(limit):
            while True:
                line = (await stderr.readline()).decode(errors="replace")
                if not line:
                    raise BrowserError("Chromium exited:\n" + "".join(seen[-20:]))
                seen.append(line)
                match = _LISTENING.search(line)
                if match:
                    return match.group(1)
    except TimeoutError:
        raise BrowserError("Chromium did not start:\n" + "".join(seen[-20:])) from None


async def _drive(
    s: _Session, url: str, pdf: bool, png: bool, evaluate: str | None, width: int
) -> PageResult:
    await s.call("Page.enable")
    await s.call("Runtime.enable")
    await s.call("Log.enable")
    await s.call("Page.navigate", url=url)
    await s.call("Runtime.evaluate", expression="1")  # let pending events arrive
    await s.wait_for("Page.loadEventFired")
    result = PageResult()
    if evaluate is not None:
        answer = await s.call("Runtime.evaluate", expression=evaluate, returnByValue=True)
        if "exceptionDetails" in answer:
            raise BrowserError(f"evaluate failed: {answer['exceptionDetails']}")
        result.value = answer.get("result", {}).get("value")
    if png:
        metrics = await s.call("Page.getLayoutMetrics")
        height = int(metrics.get("cssContentSize", metrics.get("contentSize", {}))["height"])
        await s.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = await s.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        result.png = base64.b64decode(shot["data"])
        await s.call("Emulation.clearDeviceMetricsOverride")
    if pdf:
        printed = await s.call(
            "Page.printToPDF",
            printBackground=True,
            paperWidth=8.27,  # A4
            paperHeight=11.69,
            marginTop=0.4,
            marginBottom=0.4,
            marginLeft=0.4,
            marginRight=0.4,
        )
        result.pdf = base64.b64decode(printed["data"])
    with contextlib.suppress(BrowserError):
        await s.call("Runtime.evaluate", expression="1")  # collect late console events
    result.console_errors = s.console_errors()
    return result
