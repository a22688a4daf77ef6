"""`ebbflow scalers probe`: read every trigger once, now, through the production readers."""

from __future__ import annotations

import os
import time
from typing import Any

from scaler.api import ScaledObject
from scaler.auth import LocalObjects
from scaler.sources import LiveScalers
from scaler.triggers import trigger_specs
from scalers.pools import Pools


async def probe_all(
    objects: list[ScaledObject], raws: list[dict[str, Any]], read_timeout: float
) -> list[dict[str, Any]]:
    """One result per trigger: value, target, activity and latency, or the error."""
    pools = Pools(open_seconds=0.0)  # a probe wants every read tried, not short-circuited
    live = LiveScalers(LocalObjects(raws), pools, read_timeout, process_env=dict(os.environ))
    results = []
    try:
        for so in objects:
            for index, (name, spec) in enumerate(trigger_specs(so)):
                trigger = so.spec.triggers[index]
                row: dict[str, Any] = {
                    "scaledObject": f"{so.metadata.namespace}/{so.metadata.name}",
                    "trigger": name,
                    "type": trigger.type,
                    "metric": spec.name,
                    "value": None,
                    "target": spec.target,
                    "activationTarget": spec.activation_target,
                    "active": False,
                    "latencyMs": 0.0,
                    "error": None,
                }
                began = time.perf_counter()
                try:
                    scaler = await live(so, index, name, spec)
                    try:
                        value = await scaler.read()
                    finally:
                        await scaler.close()
                except Exception as exc:  # every failure is reported, none stops the probe
                    row["error"] = f"{type(exc).__name__}: {exc}"
                else:
                    row["value"] = value
                    row["active"] = value > spec.activation_target
                row["latencyMs"] = round((time.perf_counter() - began) * 1000, 1)
                results.append(row)
    finally:
        await pools.close()
    return results
