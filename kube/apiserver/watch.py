"""`?watch=1`: a stream of newline-delimited WatchEvents, as kube-apiserver sends them.

- no resourceVersion (or "0"), or sendInitialEvents=true: ADDED for every current object,
  then changes (with sendInitialEvents, a BOOKMARK annotated `k8s.io/initial-events-end`
  marks the end of the initial ones);
- a resourceVersion: the changes after it, or one ERROR event with a 410 Expired Status
  when it has left the history window (the client must re-list);
- allowWatchBookmarks=true: a BOOKMARK after each idle `bookmark_interval`;
- timeoutSeconds: the stream ends cleanly after it;
- fieldSelector: applied to each change; an object that stops (starts) matching is sent
  as DELETED (ADDED). After a resume the server cannot know what the client saw, so the
  objects matching at the start of the watch count as seen.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kube.apiserver.faults import HttpFaults
from kube.apiserver.fields import FieldSelector
from kube.apiserver.resources import Resource
from kube.apiserver.status import ApiError
from kube.apiserver.tables import table
from kube.memory import MemoryCluster
from kube.port import JSON, Gone, WatchEvent

INITIAL_EVENTS_END = "k8s.io/initial-events-end"


@dataclass(frozen=True)
class WatchOptions:
    namespace: str | None
    label_selector: str | None
    fields: FieldSelector
    resource_version: str | None
    bookmarks: bool
    timeout: float | None
    send_initial_events: bool
    as_table: bool
    include_object: str


def _key(obj: JSON) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return metadata.get("namespace", ""), metadata.get("name", "")


class WatchStream:
    """One watch request: opens the cluster watch, writes events until an end condition."""

    def __init__(
        self,
        cluster: MemoryCluster,
        faults: HttpFaults,
        resource: Resource,
        options: WatchOptions,
        *,
        now: Callable[[], float],
        bookmark_interval: float,
    ) -> None:
        self._cluster = cluster
        self._faults = faults
        self._resource = resource
        self._options = options
        self._now = now
        self._bookmark_interval = bookmark_interval
        self._seen: set[tuple[str, str]] = set()
        self._headers_sent = False

    async def serve(self, request: web.Request) -> web.StreamResponse:
        options = self._options
        drop = self._faults.dropped
        response = web.StreamResponse(
            status=200,
            headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"},
        )
        response.enable_chunked_encoding()
        if self._faults.take_watch_expiry():
            await response.prepare(request)
            await self._write_error(response, ApiError(410, "too old resource version (injected)"))
            return response
        initial: list[JSON] = []
        try:
            rv = options.resource_version
            if rv in (None, "", "0") or options.send_initial_events:
                initial, rv = await self._cluster.list(
                    self._resource.kind, options.namespace, options.label_selector
                )
            elif options.fields:
                current, _ = await self._cluster.list(
                    self._resource.kind, options.namespace, options.label_selector
                )
                self._seen = {_key(o) for o in current if options.fields.matches(o)}
            stream = self._cluster.watch(
                self._resource.kind, options.namespace, options.label_selector, rv
            )
        except Gone as error:
            await response.prepare(request)
            await self._write_error(response, ApiError(410, str(error)))
            return response
        try:
            await response.prepare(request)
            for obj in initial:
                await self._send(response, WatchEvent("ADDED", obj))
            if options.send_initial_events:
                await self._bookmark(response, rv or "0", {INITIAL_EVENTS_END: "true"})
            await self._pump(response, stream, drop)
        finally:
            await _close(stream)
        return response

    async def _pump(
        self, response: web.StreamResponse, stream: AsyncIterator[WatchEvent], drop: asyncio.Event
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options.timeout if self._options.timeout else None
        next_event = asyncio.ensure_future(_next(stream))
        dropped = asyncio.ensure_future(drop.wait())
        try:
            while True:
                wait = self._bookmark_interval if self._options.bookmarks else None
                if deadline is not None:
                    left = deadline - loop.time()
                    if left <= 0:
                        return
                    wait = left if wait is None else min(wait, left)
                done, _ = await asyncio.wait(
                    {next_event, dropped}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                if dropped in done:
                    return
                if next_event not in done:
                    if self._options.bookmarks:
                        await self._idle_bookmark(response, next_event)
                    continue
                try:
                    event = next_event.result()
                except StopAsyncIteration:
                    return
                except Gone as error:
                    await self._write_error(response, ApiError(410, str(error)))
                    return
                await self._send(response, event)
                next_event = asyncio.ensure_future(_next(stream))
        finally:
            dropped.cancel()
            if not next_event.done():
                # Cancelling the pending read ends the generator (its finally unregisters).
                next_event.cancel()
                await asyncio.wait({next_event})
            elif not next_event.cancelled():
                next_event.exception()  # retrieved: an unsent error ends with the stream

    async def _idle_bookmark(
        self, response: web.StreamResponse, next_event: asyncio.Future[WatchEvent]
    ) -> None:
        # Every change up to `version` is already in this watch's queue. One pass of the loop
        # lets a queued change reach `next_event`; if none did, nothing up to `version` is
        # unsent, and the bookmark is true.
        version = self._cluster.resource_version
        await asyncio.sleep(0)
        if not next_event.done():
            await self._bookmark(response, version)

    async def _send(self, response: web.StreamResponse, event: WatchEvent) -> None:
        kind, obj = self._translate(event)
        if kind is None:
            return
        served = self._resource.served(obj)
        if self._options.as_table:
            body: Any = table(
                self._resource.kind.kind,
                [served],
                now=self._now(),
                include_object=self._options.include_object,
                headers=not self._headers_sent,
            )
            self._headers_sent = True
        else:
            body = served
        await _write(response, {"type": kind, "object": body})

    def _translate(self, event: WatchEvent) -> tuple[str | None, JSON]:
        """The event as a field-selecting watcher sees it (see the module docstring)."""
        fields, obj = self._options.fields, event.object
        if not fields:
            return event.type, obj
        key, matches = _key(obj), fields.matches(obj)
        seen = key in self._seen
        if event.type == "DELETED":
            self._seen.discard(key)
            return ("DELETED" if seen or matches else None), obj
        if matches:
            self._seen.add(key)
            return ("MODIFIED" if seen and event.type == "MODIFIED" else "ADDED"), obj
        if seen:
            self._seen.discard(key)
            return "DELETED", obj
        return None, obj

    async def _bookmark(
        self, response: web.StreamResponse, version: str, annotations: dict[str, str] | None = None
    ) -> None:
        metadata: JSON = {"resourceVersion": version}
        if annotations:
            metadata["annotations"] = annotations
        obj = {
            "kind": self._resource.kind.kind,
            "apiVersion": self._resource.api_version,
            "metadata": metadata,
        }
        await _write(response, {"type": "BOOKMARK", "object": obj})

    async def _write_error(self, response: web.StreamResponse, error: ApiError) -> None:
        await _write(response, {"type": "ERROR", "object": error.status()})


async def _next(stream: AsyncIterator[WatchEvent]) -> WatchEvent:
    return await anext(stream)


async def _close(stream: AsyncIterator[WatchEvent]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


async def _write(response: web.StreamResponse, event: JSON) -> None:
    await response.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")
