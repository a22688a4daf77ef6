"""Offerings that recently failed with insufficient capacity, remembered for a while.

Karpenter caches an insufficient-capacity error per (type, zone, capacity type) for three
minutes, so the next plan picks another offering instead of failing the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

from provisioner.cloud.port import OfferingKey

ICE_TTL_SECONDS = 180.0  # Karpenter's UnavailableOfferingsTTL


class UnavailableOfferings:
    def __init__(self, ttl: float = ICE_TTL_SECONDS) -> None:
        self.ttl = ttl
        self._until: dict[OfferingKey, float] = {}

    def mark(self, offerings: Iterable[OfferingKey], now: float) -> None:
        for key in offerings:
            self._until[key] = now + self.ttl

    def is_unavailable(self, key: OfferingKey, now: float) -> bool:
        until = self._until.get(key)
        if until is None:
            return False
        if until <= now:
            del self._until[key]
            return False
        return True

    def active(self, now: float) -> set[OfferingKey]:
        """Every offering still cached at `now`."""
        return {key for key in list(self._until) if self.is_unavailable(key, now)}
