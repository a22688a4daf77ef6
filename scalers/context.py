"""What a reader gets to build a live Scaler: typed metadata, its spec, auth and shared pools."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scalers.base import MetricSpec, ResourceMetrics, TriggerMetadata

if TYPE_CHECKING:
    from scalers.pools import Pools


class Secret(str):
    """A credential: compares and concatenates as a str, but never prints."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:  # f-strings and logging call __str__/__format__
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    @property
    def reveal(self) -> str:
        """The real value, for the one place that sends it to the server."""
        return str.__str__(self)


@dataclass(frozen=True)
class ScalerContext:
    """Everything a reader factory needs for one trigger."""

    trigger_type: str
    metadata: TriggerMetadata
    spec: MetricSpec
    pools: Pools
    # authentication parameters resolved from TriggerAuthentication, *FromEnv and metadata
    auth: Mapping[str, Secret] = field(default_factory=dict)
    timeout: float = 3.0  # seconds per read
    now: Callable[[], float] = time.time  # epoch seconds: the clock port's now
    # where the scale target lives, for triggers that read its pods (cpu, memory)
    namespace: str = "default"
    selector: str = ""
    resource_metrics: ResourceMetrics | None = None

    def param(self, name: str) -> Secret | None:
        return self.auth.get(name)
