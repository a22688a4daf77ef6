"""The CloudProvider port: launch, delete, list and get instances; typed errors.

The provisioner asks for a node by a ranked list of instance types, the zones and the
capacity types its NodeClaim allows; the provider launches the cheapest offering it can
(as CreateFleet does) and names what it could not get, so the caller can cache it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from provisioner.scheduling.model import Taint

OfferingKey = tuple[str, str, str]  # (instance type, zone, capacity type)


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    claim: str  # the NodeClaim's name
    pool: str
    instance_types: tuple[str, ...]  # ranked: the plan's choice first, then its alternatives
    zones: tuple[str, ...]
    capacity_types: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()  # registered with the node (pool taints and startup taints)


@dataclass(frozen=True, slots=True)
class Instance:
    provider_id: str
    claim: str
    pool: str
    instance_type: str
    zone: str
    capacity_type: str
    price: float  # per hour
    launched_at: float


@dataclass(frozen=True, slots=True)
class InterruptionNotice:
    """A spot interruption warning: the instance is reclaimed at `terminates_at`."""

    provider_id: str
    noticed_at: float
    terminates_at: float


class CloudError(Exception):
    """Base of the provider's errors."""


class InsufficientCapacity(CloudError):
    """No offering of the request could be launched; `offerings` lists each one tried."""

    def __init__(self, message: str, offerings: tuple[OfferingKey, ...]) -> None:
        super().__init__(message)
        self.offerings = offerings


class InstanceNotFound(CloudError):
    pass


class CloudProvider(Protocol):
    async def create(self, request: LaunchRequest) -> Instance:
        """Launch one instance; raises InsufficientCapacity when no offering is available."""
        ...

    async def delete(self, provider_id: str) -> None:
        """Terminate an instance; raises InstanceNotFound when it is already gone."""
        ...

    async def get(self, provider_id: str) -> Instance: ...

    async def list(self) -> list[Instance]: ...
