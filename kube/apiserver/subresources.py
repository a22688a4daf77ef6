"""Subresources: /scale (autoscaling/v1 Scale), /status, pods/eviction and pods/binding.

Eviction refuses what kube/disruption_budgets.py refuses (the same check as
`MemoryCluster.evict`); binding is `MemoryCluster.bind`, one write as kube-apiserver makes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kube.apiserver.patching import APPLY, merge_diff, patch_type, patched, read_body
from kube.apiserver.request import Target, check_preconditions, json_response
from kube.apiserver.status import ApiError, success
from kube.disruption_budgets import eviction_refusal
from kube.port import JSON, POD_DISRUPTION_BUDGETS, PODS, Conflict, Invalid, Kind, Scale

if TYPE_CHECKING:
    from kube.apiserver.app import ApiServer

TargetHandler = Callable[[web.Request, Target], Awaitable[web.StreamResponse]]


def scale_json(scale: Scale) -> JSON:
    """autoscaling/v1 Scale, as GET .../scale answers."""
    metadata: JSON = {"name": scale.name, "resourceVersion": scale.resource_version}
    if scale.namespace:
        metadata["namespace"] = scale.namespace
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": scale.replicas},
        "status": {"replicas": scale.status_replicas, "selector": scale.selector},
    }


class Subresources:
    """The subresource handlers of one ApiServer."""

    def __init__(self, server: ApiServer) -> None:
        self._server = server

    def handler(self, method: str, target: Target) -> TargetHandler | None:
        """The handler for `method` on `target`'s subresource, or None (404)."""
        resource = target.resource
        routes: dict[tuple[str, str], TargetHandler] = {}
        if resource.has_scale:
            routes.update(
                {
                    ("scale", "GET"): self.get_scale,
                    ("scale", "PUT"): self.put_scale,
                    ("scale", "PATCH"): self.patch_scale,
                }
            )
        if resource.has_status:
            routes.update(
                {
                    ("status", "GET"): self.get_status,
                    ("status", "PUT"): self.put_status,
                    ("status", "PATCH"): self.patch_status,
                }
            )
        if resource.kind == PODS:
            routes.update({("eviction", "POST"): self.evict, ("binding", "POST"): self.bind})
        handler = routes.get((target.subresource or "", method))
        if handler is None and any(sub == target.subresource for sub, _ in routes):
            raise ApiError(405, f"{method} is not supported on {target.subresource}")
        return handler

    # --- /scale ---------------------------------------------------------------------------

    async def get_scale(self, request: web.Request, target: Target) -> web.StreamResponse:
        kind, name, namespace = _names(target)
        return json_response(
            scale_json(await self._server.cluster.get_scale(kind, name, namespace))
        )

    async def put_scale(self, request: web.Request, target: Target) -> web.StreamResponse:
        body = await read_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "Scale: the body must be a JSON object")
        return await self._write_scale(request, target, body)

    async def patch_scale(self, request: web.Request, target: Target) -> web.StreamResponse:
        kind, name, namespace = _names(target)
        media = patch_type(request)
        current = scale_json(await self._server.cluster.get_scale(kind, name, namespace))
        if media == APPLY:
            raise ApiError(415, "server-side apply of the scale subresource is not supported")
        body = patched(current, await read_body(request), media, custom=False)
        return await self._write_scale(request, target, body, current)

    async def _write_scale(
        self, request: web.Request, target: Target, body: JSON, current: JSON | None = None
    ) -> web.StreamResponse:
        kind, name, namespace = _names(target)
        replicas = (body.get("spec") or {}).get("replicas")
        if type(replicas) is not int or replicas < 0:
            raise Invalid(f"spec.replicas: Invalid value: {replicas!r}: must be an integer >= 0")
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        scale = await self._server.cluster.get_scale(kind, name, namespace)
        unchanged = current is not None and wanted == current["metadata"]["resourceVersion"]
        if wanted and not unchanged and wanted != scale.resource_version:
            raise Conflict(
                f'Operation cannot be fulfilled on {kind} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again"
            )
        with self._server.dry_run(request):
            written = await self._server.cluster.patch_scale(kind, name, namespace, replicas)
        return json_response(scale_json(written))

    # --- /status --------------------------------------------------------------------------

    async def get_status(self, request: web.Request, target: Target) -> web.StreamResponse:
        kind, name, namespace = _names(target)
        obj = await self._server.cluster.get(kind, name, namespace)
        return self._server.respond(request, target.resource, obj)

    async def put_status(self, request: web.Request, target: Target) -> web.StreamResponse:
        body = self._server.object_body(await read_body(request), target)
        return await self._write_status(request, target, body)

    async def patch_status(self, request: web.Request, target: Target) -> web.StreamResponse:
        kind, name, namespace = _names(target)
        media = patch_type(request)
        if media == APPLY:
            raise ApiError(415, "server-side apply of the status subresource is not supported")
        old = await self._server.cluster.get(kind, name, namespace)
        patch = await read_body(request)
        if isinstance(patch, dict):
            patch = target.resource.stored(patch)
        new = patched(old, patch, media, custom=self._server.is_custom(target.resource))
        return await self._write_status(request, target, new, old)

    async def _write_status(
        self, request: web.Request, target: Target, new: JSON, old: JSON | None = None
    ) -> web.StreamResponse:
        """Store `new`'s status (the rest of `new` is ignored, as the real server does)."""
        kind, name, namespace = _names(target)
        cluster = self._server.cluster
        current = await cluster.get(kind, name, namespace)
        wanted = (new.get("metadata") or {}).get("resourceVersion")
        stale = old is None or wanted != old["metadata"].get("resourceVersion")
        if wanted and stale and wanted != current["metadata"]["resourceVersion"]:
            raise Conflict(
                f'Operation cannot be fulfilled on {kind} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again"
            )
        diff = merge_diff(current.get("status") or {}, new.get("status") or {})
        with self._server.dry_run(request):
            if diff:
                written = await cluster.patch_status(kind, name, diff, namespace)
            else:
                written = current
        return self._server.respond(request, target.resource, written)

    # --- pods/eviction, pods/binding -------------------------------------------------------

    async def evict(self, request: web.Request, target: Target) -> web.StreamResponse:
        _, name, namespace = _names(target)
        body = await read_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "Eviction: the body must be a JSON object")
        named = (body.get("metadata") or {}).get("name")
        if named not in (None, name):
            raise ApiError(400, f"name in URL ({name}) does not match name in Eviction ({named})")
        options: JSON = body.get("deleteOptions") or {}
        cluster = self._server.cluster
        pod = await cluster.get(PODS, name, namespace)
        check_preconditions(options, pod, target)
        budgets, _ = await cluster.list(POD_DISRUPTION_BUDGETS, namespace)
        pods, _ = await cluster.list(PODS, namespace)
        refusal = eviction_refusal(pod, budgets, pods)
        if refusal is not None:
            details = {"causes": list(refusal.causes)} if refusal.causes else None
            raise ApiError(
                refusal.code, refusal.message, details=details, retry_after=refusal.retry_after
            )
        with self._server.dry_run(request, options):
            await cluster.delete(PODS, name, namespace)
        return json_response(success(201), 201)

    async def bind(self, request: web.Request, target: Target) -> web.StreamResponse:
        body = await read_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "Binding: the body must be a JSON object")
        metadata: dict[str, Any] = body.get("metadata") or {}
        name = target.name or metadata.get("name")
        if not name:
            raise Invalid("Binding: metadata.name: Required value")
        if metadata.get("name") not in (None, name):
            raise ApiError(400, f"name in URL ({name}) does not match name in Binding")
        node = (body.get("target") or {}).get("name")
        if not node or (body.get("target") or {}).get("kind") not in (None, "", "Node"):
            raise Invalid("Binding: target: must name a Node")
        with self._server.dry_run(request):
            await self._server.cluster.bind(name, target.namespace or "", node)
        return json_response(success(201), 201)


def _names(target: Target) -> tuple[Kind, str, str]:
    assert target.name is not None
    return target.resource.kind, target.name, target.namespace or ""
