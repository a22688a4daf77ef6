"""The pieces both controllers loop with: list+watch, the guarded poll, reads, conditions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from kube.port import JSON, Cluster, ClusterError, Gone, Kind
from scaler.clock import Clock
from scaler.decision import TriggerReading
from scalers.base import MetricSpec, Scaler

log = logging.getLogger("ebbflow.loops")

Key = tuple[str, str]

BACKOFF_START = 1.0
BACKOFF_MAX = 300.0
WATCH_RESTART_PAUSE = 1.0


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def key_of(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return meta.get("namespace", "default"), meta["name"]


async def watch_objects(
    cluster: Cluster,
    clock: Clock,
    kind: Kind,
    namespace: str | None,
    upsert: Callable[[JSON], Awaitable[None]],
    remove: Callable[[Key], Awaitable[None]],
    known: Callable[[], Iterable[Key]],
    on_listed: Callable[[], None] | None = None,
) -> None:
    """List and watch `kind`, keeping upsert/remove in step with the cluster, until cancelled."""
    failures = 0
    while True:
        try:
            items, version = await cluster.list(kind, namespace)
            seen = {key_of(obj) for obj in items}
            for obj in items:
                await upsert(obj)
            for key in set(known()) - seen:
                await remove(key)
            if on_listed is not None:
                on_listed()
            failures = 0
            async for event in cluster.watch(kind, namespace, resource_version=version):
                if event.type == "DELETED":
                    await remove(key_of(event.object))
                elif event.type in ("ADDED", "MODIFIED"):
                    await upsert(event.object)
        except Gone:
            log.info("%s watch expired; re-listing", kind.kind)
        except ClusterError as exc:  # an unreachable API server is retried, never fatal
            failures += 1
            log.warning("listing %s failed (%s); retrying", kind.kind, exc)
            await clock.sleep(min(BACKOFF_START * 2 ** (failures - 1), BACKOFF_MAX))
        # a watch that ends is resumed by a re-list; the pause stops a tight spin
        await clock.sleep(WATCH_RESTART_PAUSE)


async def poll_guarded(
    clock: Clock,
    what: str,
    poll_once: Callable[[], Awaitable[float | None]],
    on_error: Callable[[Exception], None],
) -> None:
    """Call `poll_once` (it returns the wait until the next poll, or None to stop) forever;
    an exception is logged, counted through `on_error` and retried with backoff."""
    failures = 0
    while True:
        try:
            interval = await poll_once()
            if interval is None:
                return
            failures = 0
            await clock.sleep(interval)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the guard: one object's failure never stops the others
            failures += 1
            on_error(exc)
            backoff = min(BACKOFF_START * 2 ** (failures - 1), BACKOFF_MAX)
            log.warning(
                "poll of %s failed (%s: %s); retrying in %.0fs",
                what,
                type(exc).__name__,
                exc,
                backoff,
            )
            await clock.sleep(backoff)


def condition(kind: str, ok: bool, reason: str, message: str, now: float) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": rfc3339(now),
    }


async def read_trigger(name: str, spec: MetricSpec, scaler: Scaler) -> TriggerReading:
    try:
        value = await scaler.read()
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # any failure of a source is a failed read, never a zero
        return TriggerReading(name, spec, error=f"{type(exc).__name__}: {exc}")
    activity = getattr(scaler, "activity_value", None)
    return TriggerReading(name, spec, value=value, activity_value=activity)


async def close_scaler(scaler: Scaler) -> None:
    try:
        await scaler.close()
    except Exception as exc:  # closing must not stop the controller
        log.warning("closing a scaler failed: %s", exc)
