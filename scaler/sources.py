"""The production ScalerFactory: live readers from the registry, with resolved auth."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from kube.port import kind_for
from scaler.api import ScaledJob, ScaledObject
from scaler.auth import ObjectSource, resolve_auth
from scalers import registry
from scalers.base import (
    MetricSpec,
    ResourceMetrics,
    Scaler,
    ScalerError,
    SourceUnreachable,
)
from scalers.context import ScalerContext, Secret
from scalers.pools import Pools


class LiveScalers:
    """Builds each trigger's live reader; every reader of the process shares `pools`."""

    def __init__(
        self,
        objects: ObjectSource,
        pools: Pools,
        timeout: float = 3.0,
        process_env: Mapping[str, str] | None = None,
        cluster_auth_namespace: str = "ebbflow",
        now: Callable[[], float] = time.time,
        resource_metrics: ResourceMetrics | None = None,
    ) -> None:
        self.objects = objects
        self.pools = pools
        self.timeout = timeout
        self.process_env = process_env
        self.cluster_auth_namespace = cluster_auth_namespace
        self.now = now
        self.resource_metrics = resource_metrics

    async def __call__(
        self, so: ScaledObject | ScaledJob, index: int, name: str, spec: MetricSpec
    ) -> Scaler:
        trigger = so.spec.triggers[index]
        metadata = registry.parse_metadata(trigger.type, trigger.metadata, trigger.metric_type)
        auth = await resolve_auth(
            so, index, self.objects, self.process_env, self.cluster_auth_namespace
        )
        selector = ""
        if trigger.is_resource and isinstance(so, ScaledObject):
            selector = await _selector_of(self.objects, so)
        context = ScalerContext(
            trigger_type=trigger.type,
            metadata=metadata,
            spec=spec,
            pools=self.pools,
            auth=auth,
            timeout=self.timeout,
            now=self.now,
            namespace=so.metadata.namespace,
            selector=selector,
            resource_metrics=self.resource_metrics,
        )
        return RedactingScaler(registry.build_scaler(context), auth.values())


async def _selector_of(objects: ObjectSource, so: ScaledObject) -> str:
    """The label selector of the scale target's pods (`app=web,tier=api`)."""
    target = so.spec.scale_target_ref
    workload = await objects.get(
        kind_for(target.api_version, target.kind), target.name, so.metadata.namespace
    )
    labels = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


class RedactingScaler:
    """Defence in depth: a reader's error never carries a credential out, whatever it says."""

    def __init__(self, inner: Scaler, secrets: Iterable[Secret]) -> None:
        self.inner = inner
        self.spec = inner.spec
        # longest first, so a secret that contains another is masked whole
        self._secrets = sorted({s.reveal for s in secrets if len(s.reveal) >= 3}, key=len)[::-1]

    async def read(self) -> float:
        try:
            return await self.inner.read()
        except Exception as exc:
            text = f"{exc}"
            clean = self._scrub(text)
            if clean == text:
                raise
            kind = SourceUnreachable if isinstance(exc, SourceUnreachable) else ScalerError
            raise kind(f"{type(exc).__name__}: {clean}") from None

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)  # e.g. a reader's replica_cap

    async def close(self) -> None:
        await self.inner.close()
