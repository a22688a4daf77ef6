"""Authentication parameters of a trigger, resolved as KEDA resolves them.

Two sources, as in KEDA: metadata keys ending in `FromEnv` name an environment variable of
the scale target's container (`envSourceContainerName`, else the first container), and an
`authenticationRef` names a TriggerAuthentication (or ClusterTriggerAuthentication) whose
`secretTargetRef`, `configMapTargetRef` and `env` entries each fill one parameter.

Values come back as `Secret`s, which print as `***`. Errors name the object, the entry and
the key that is missing, never a value.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from typing import Any, Protocol

from kube.port import (
    CLUSTER_TRIGGER_AUTHENTICATIONS,
    CONFIG_MAPS,
    JSON,
    SECRETS,
    TRIGGER_AUTHENTICATIONS,
    Kind,
    NotFound,
    kind_for,
)
from scaler.api import ScaledJob, ScaledObject, TriggerAuthenticationSpec
from scalers.context import Secret

FROM_ENV = "FromEnv"


class AuthError(ValueError):
    """A credential that cannot be resolved. The message holds names, never values."""


class ObjectSource(Protocol):
    """Where resolution reads Secrets, ConfigMaps, workloads and TriggerAuthentications."""

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> JSON: ...


class LocalObjects:
    """Objects from manifest files, for `ebbflow scalers probe` without a cluster."""

    def __init__(self, objects: list[JSON]) -> None:
        self._objects: dict[tuple[str, str, str], JSON] = {}
        for obj in objects:
            meta = obj.get("metadata") or {}
            kind = obj.get("kind", "")
            self._objects[(kind, meta.get("namespace", "default"), meta.get("name", ""))] = obj

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> JSON:
        found = self._objects.get((kind.kind, namespace or "default", name))
        if found is None and not kind.namespaced:
            found = next(
                (o for (k, _, n), o in self._objects.items() if k == kind.kind and n == name),
                None,
            )
        if found is None:
            raise NotFound(f"{kind.kind} {namespace}/{name} not found")
        return found


async def _secret_value(
    objects: ObjectSource, namespace: str, name: str, key: str, where: str
) -> str:
    try:
        secret = await objects.get(SECRETS, name, namespace)
    except NotFound:
        raise AuthError(f"{where}: Secret {namespace}/{name} not found") from None
    if key in (secret.get("stringData") or {}):
        return str(secret["stringData"][key])
    data = secret.get("data") or {}
    if key not in data:
        raise AuthError(f"{where}: Secret {namespace}/{name} has no key {key!r}")
    try:
        return base64.b64decode(data[key], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise AuthError(
            f"{where}: Secret {namespace}/{name} key {key!r} is not base64 text"
        ) from None


async def _config_map_value(
    objects: ObjectSource, namespace: str, name: str, key: str, where: str
) -> str:
    try:
        config_map = await objects.get(CONFIG_MAPS, name, namespace)
    except NotFound:
        raise AuthError(f"{where}: ConfigMap {namespace}/{name} not found") from None
    data = config_map.get("data") or {}
    if key not in data:
        raise AuthError(f"{where}: ConfigMap {namespace}/{name} has no key {key!r}")
    return str(data[key])


class ContainerEnv:
    """The environment of the workload's container: the scale target's pod template for a
    ScaledObject, the job template for a ScaledJob."""

    def __init__(
        self,
        objects: ObjectSource,
        so: ScaledObject | ScaledJob,
        fallback: Mapping[str, str] | None = None,
    ) -> None:
        self._objects = objects
        self._so = so
        self._fallback = fallback
        self._containers: list[dict[str, Any]] | None = None

    async def _load(self) -> list[dict[str, Any]]:
        if self._containers is None and isinstance(self._so, ScaledJob):
            pod = self._so.spec.job_target_ref.template.get("spec") or {}
            self._containers = list(pod.get("containers") or [])
        if self._containers is None:
            assert isinstance(self._so, ScaledObject)
            target = self._so.spec.scale_target_ref
            try:
                kind = kind_for(target.api_version, target.kind)
                workload = await self._objects.get(kind, target.name, self._so.metadata.namespace)
            except NotFound:
                workload = {}
            template = (workload.get("spec") or {}).get("template") or {}
            self._containers = list((template.get("spec") or {}).get("containers") or [])
        return self._containers

    async def lookup(self, variable: str, container: str | None, where: str) -> str:
        namespace = self._so.metadata.namespace
        containers = await self._load()
        chosen = container or (
            self._so.spec.env_source_container_name
            if isinstance(self._so, ScaledJob)
            else self._so.spec.scale_target_ref.env_source_container_name
        )
        picked = [c for c in containers if c.get("name") == chosen] if chosen else containers[:1]
        for c in picked:
            for entry in c.get("env") or []:
                if entry.get("name") != variable:
                    continue
                if "value" in entry:
                    return str(entry["value"])
                source = entry.get("valueFrom") or {}
                if ref := source.get("secretKeyRef"):
                    return await _secret_value(
                        self._objects, namespace, ref["name"], ref["key"], where
                    )
                if ref := source.get("configMapKeyRef"):
                    return await _config_map_value(
                        self._objects, namespace, ref["name"], ref["key"], where
                    )
            for env_from in c.get("envFrom") or []:
                prefix = env_from.get("prefix", "")
                if not variable.startswith(prefix):
                    continue
                key = variable[len(prefix) :]
                try:
                    if ref := env_from.get("secretRef"):
                        return await _secret_value(
                            self._objects, namespace, ref["name"], key, where
                        )
                    if ref := env_from.get("configMapRef"):
                        return await _config_map_value(
                            self._objects, namespace, ref["name"], key, where
                        )
                except AuthError:
                    continue  # envFrom sources that lack the key are skipped, as in Kubernetes
        if self._fallback is not None and variable in self._fallback:
            return self._fallback[variable]
        owner = self._so.metadata.name
        raise AuthError(f"{where}: no environment variable {variable!r} in {owner}'s container")


async def resolve_auth(
    so: ScaledObject | ScaledJob,
    index: int,
    objects: ObjectSource,
    process_env: Mapping[str, str] | None = None,
    cluster_auth_namespace: str = "ebbflow",
) -> dict[str, Secret]:
    """The resolved authentication parameters of trigger `index` of `so`.

    `process_env` is consulted after the container for `*FromEnv` (for probing a manifest
    from a laptop); `cluster_auth_namespace` is where ClusterTriggerAuthentication reads
    its Secrets (KEDA: the operator's namespace).
    """
    trigger = so.spec.triggers[index]
    params: dict[str, Secret] = {}
    env = ContainerEnv(objects, so, process_env)
    for key, value in trigger.metadata.items():
        if key.endswith(FROM_ENV) and value:
            where = f"spec.triggers[{index}].metadata.{key}"
            params[key[: -len(FROM_ENV)]] = Secret(await env.lookup(str(value), None, where))
    ref = trigger.authentication_ref
    if ref is None:
        return params
    cluster_scoped = ref.kind == "ClusterTriggerAuthentication"
    kind = CLUSTER_TRIGGER_AUTHENTICATIONS if cluster_scoped else TRIGGER_AUTHENTICATIONS
    namespace = cluster_auth_namespace if cluster_scoped else so.metadata.namespace
    try:
        raw = await objects.get(kind, ref.name, None if cluster_scoped else namespace)
    except NotFound:
        raise AuthError(
            f"spec.triggers[{index}].authenticationRef: {ref.kind} {ref.name} not found"
        ) from None
    spec = TriggerAuthenticationSpec.model_validate(raw.get("spec") or {})
    label = f"{ref.kind} {ref.name}"
    for i, s in enumerate(spec.secret_target_ref):
        where = f"{label}: secretTargetRef[{i}]"
        params[s.parameter] = Secret(await _secret_value(objects, namespace, s.name, s.key, where))
    for i, c in enumerate(spec.config_map_target_ref):
        where = f"{label}: configMapTargetRef[{i}]"
        params[c.parameter] = Secret(
            await _config_map_value(objects, namespace, c.name, c.key, where)
        )
    for i, e in enumerate(spec.env):
        where = f"{label}: env[{i}]"
        params[e.parameter] = Secret(await env.lookup(e.name, e.container_name, where))
    if spec.pod_identity is not None and spec.pod_identity.provider != "none":
        # cloud identities are resolved by the provider's SDK in the reader; say which
        params["podIdentity"] = Secret(spec.pod_identity.provider)
    return params


def process_environment() -> Mapping[str, str]:
    return dict(os.environ)
