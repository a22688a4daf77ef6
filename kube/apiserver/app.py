"""The aiohttp application: routes Kubernetes REST requests to a MemoryCluster.

Paths: `/api/v1[/namespaces/{ns}]/{plural}[/{name}[/{subresource}]]` and the same under
`/apis/{group}/{version}`; a namespaced plural without a namespace lists across namespaces.
Verbs: get, list, watch, create (POST), update (PUT), patch, delete, deletecollection;
`?dryRun=All` on every write. Errors are metav1.Status objects (status.py).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kube.apiserver import discovery
from kube.apiserver.faults import HttpFaults
from kube.apiserver.fields import FieldSelector, parse_field_selector
from kube.apiserver.patching import (
    APPLY,
    JSON_PATCH,
    MERGE,
    merge_diff,
    patch_type,
    patched,
    read_body,
)
from kube.apiserver.request import (
    Target,
    check_preconditions,
    delete_options,
    dry_run_requested,
    error_response,
    flag,
    json_response,
    label_selector,
    not_found,
    page,
    request_verb,
)
from kube.apiserver.resources import (
    CUSTOM_RESOURCE_DEFINITIONS,
    GroupVersion,
    Resource,
    ResourceTable,
    custom_resources,
    served_resources,
)
from kube.apiserver.status import ApiError, from_cluster_error
from kube.apiserver.subresources import Subresources
from kube.apiserver.tables import table, wants_table
from kube.apiserver.watch import WatchOptions, WatchStream
from kube.memory import MemoryCluster
from kube.port import JSON, ClusterError, Invalid, NotFound

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TargetHandler = Callable[[web.Request, Target], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Access:
    """One resource request as RBAC sees it: `deployments/scale` in `apps`, verb `patch`."""

    group: str
    resource: str
    verb: str
    namespace: str | None


class ApiServer:
    """The Kubernetes REST API over `cluster`.

    `now` is the wall clock used for the AGE column; `bookmark_interval` is how long a watch
    that asked for bookmarks stays idle before it gets one.
    """

    def __init__(
        self,
        cluster: MemoryCluster,
        *,
        now: Callable[[], float] = time.time,
        bookmark_interval: float = 1.0,
    ) -> None:
        self.cluster = cluster
        self.faults = HttpFaults(cluster.faults)
        self.resources: ResourceTable = served_resources()
        self._builtin = frozenset(resource.kind for resource in self.resources)
        self.now = now
        self.bookmark_interval = bookmark_interval
        self._closing = False
        self._subresources = Subresources(self)
        # called with every resource request, before it is served (RBAC tables are built
        # from what a client really asks for)
        self.on_access: Callable[[Access], None] | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors])
        app.router.add_route("*", "/{path:.*}", self._dispatch)
        return app

    def close_watches(self) -> None:
        """End every open watch, and every watch opened from now on (before shutdown)."""
        self._closing = True
        self.faults.drop_watches()

    # --- routing ----------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as error:
            return error_response(error)
        except ClusterError as error:
            return error_response(from_cluster_error(error))
        except web.HTTPException:
            raise
        except Exception as error:  # answered as the real server does; logged, not swallowed
            log.exception("%s %s failed", request.method, request.path)
            return error_response(ApiError(500, f"internal error: {error}"))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        segments = [s for s in request.path.split("/") if s]
        if request.method != "GET" and (not segments or segments[0] not in ("api", "apis")):
            raise ApiError(405, f"{request.method} is not supported on {request.path}")
        match segments:
            case ["version"]:
                return self._fault_checked(request, discovery.version_info())
            case ["healthz" | "livez" | "readyz"]:
                return web.Response(text="ok")
            case ["api"]:
                host = request.host or "127.0.0.1"
                return self._fault_checked(request, discovery.api_versions(host))
            case ["apis"]:
                return self._fault_checked(request, discovery.api_group_list(self.resources))
            case ["apis", group]:
                versions = self.resources.groups().get(group)
                if versions is None or request.method != "GET":
                    raise not_found()
                return self._fault_checked(request, discovery.api_group(group, versions))
            case ["openapi", "v3"]:
                return self._fault_checked(request, discovery.openapi_v3_index(self.resources))
            case ["openapi", "v3", "api", version]:
                return self._openapi(request, GroupVersion("", version))
            case ["openapi", "v3", "apis", group, version]:
                return self._openapi(request, GroupVersion(group, version))
            case ["api", version, *rest]:
                return await self._group_version(request, GroupVersion("", version), rest)
            case ["apis", group, version, *rest]:
                return await self._group_version(request, GroupVersion(group, version), rest)
        raise not_found()

    def _fault_checked(self, request: web.Request, body: JSON) -> web.Response:
        self.faults.check("", request.path)
        return json_response(body)

    def _openapi(self, request: web.Request, gv: GroupVersion) -> web.Response:
        if gv not in self.resources.group_versions():
            raise not_found()
        return self._fault_checked(request, discovery.openapi_v3_document(gv, self.resources))

    async def _group_version(
        self, request: web.Request, gv: GroupVersion, rest: list[str]
    ) -> web.StreamResponse:
        if gv not in self.resources.group_versions():
            raise not_found()
        if not rest:
            if request.method != "GET":
                raise ApiError(405, f"{request.method} is not supported on {request.path}")
            served = self.resources.in_group_version(gv.group, gv.version)
            return self._fault_checked(request, discovery.api_resource_list(gv, served))
        if gv.group == "" and rest[:1] == ["namespaces"] and rest[2:] == ["bindings"]:
            if request.method != "POST":
                raise ApiError(405, f"{request.method} is not supported on {request.path}")
            pods = self.resources.find("", "v1", "pods")
            assert pods is not None
            target = Target(pods, rest[1], None, "binding")
            self._record(target, "create")
            self.faults.check("create", request.path)
            return await self._call(request, target, self._subresources.bind)
        target = self._target(gv, rest)
        verb = request_verb(request, target)
        self._record(target, verb)
        self.faults.check(verb, request.path)
        handler = self._handler(request.method, verb, target)
        response = await self._call(request, target, handler)
        if target.resource.kind == CUSTOM_RESOURCE_DEFINITIONS and verb not in ("get", "list"):
            await self._serve_custom_resources()
        return response

    def _record(self, target: Target, verb: str) -> None:
        if self.on_access is not None:
            resource = target.resource.plural
            if target.subresource is not None:
                resource += f"/{target.subresource}"
            self.on_access(Access(target.resource.group, resource, verb, target.namespace))

    async def _serve_custom_resources(self) -> None:
        """Serve the resources of every stored CRD not served yet (as kube-apiserver does
        once a CRD is established); built-in resources and our aliases stay as they are."""
        crds, _ = await self.cluster.list(CUSTOM_RESOURCE_DEFINITIONS)
        for crd in crds:
            for resource in custom_resources(crd):
                self.resources.add(resource)

    def _target(self, gv: GroupVersion, rest: list[str]) -> Target:
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            candidate = self.resources.find(gv.group, gv.version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        resource = self.resources.find(gv.group, gv.version, rest[0])
        if resource is None or len(rest) > 3:
            raise not_found()
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if resource.namespaced and namespace is None and name is not None:
            raise not_found()
        return Target(resource, namespace, name, subresource)

    def _handler(self, method: str, verb: str, target: Target) -> TargetHandler:
        if target.subresource is not None:
            handler = self._subresources.handler(method, target)
            if handler is None:
                raise not_found()
            return handler
        handlers: dict[str, TargetHandler] = {
            "get": self._get,
            "list": self._list,
            "watch": self._watch,
            "create": self._create,
            "update": self._update,
            "patch": self._patch,
            "delete": self._delete,
            "deletecollection": self._delete_collection,
        }
        return handlers[verb]

    async def _call(
        self, request: web.Request, target: Target, handler: TargetHandler
    ) -> web.StreamResponse:
        try:
            return await handler(request, target)
        except ClusterError as error:
            raise _api_error(error, target, target.name or "") from error

    # --- reads ------------------------------------------------------------------------------

    async def _get(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        obj = await self.cluster.get(target.resource.kind, target.name, target.namespace)
        return self.respond(request, target.resource, obj)

    async def _list(self, request: web.Request, target: Target) -> web.StreamResponse:
        resource = target.resource
        labels = label_selector(request)
        fields = parse_field_selector(request.query.get("fieldSelector"), resource.kind.kind)
        items, version = await self.cluster.list(resource.kind, target.namespace, labels)
        items = [obj for obj in items if fields.matches(obj)]
        items, token = page(items, request.query.get("limit"), request.query.get("continue"))
        items = [resource.served(obj) for obj in items]
        if wants_table(request.headers.get("Accept", "")):
            body = table(
                resource.kind.kind,
                items,
                now=self.now(),
                resource_version=version,
                include_object=request.query.get("includeObject", "Metadata"),
            )
        else:
            body = {
                "kind": f"{resource.kind.kind}List",
                "apiVersion": resource.api_version,
                "metadata": {"resourceVersion": version},
                "items": items,
            }
        if token:
            body["metadata"]["continue"] = token
        return json_response(body)

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        resource, query = target.resource, request.query
        fields = parse_field_selector(query.get("fieldSelector"), resource.kind.kind)
        if target.name is not None:  # the legacy watch of one object, by field selector
            fields = FieldSelector(
                (*fields.terms, *parse_field_selector(f"metadata.name={target.name}", "").terms)
            )
        timeout = query.get("timeoutSeconds")
        if timeout is not None and not timeout.isdigit():
            raise ApiError(400, f"timeoutSeconds: not a number of seconds: {timeout!r}")
        options = WatchOptions(
            namespace=target.namespace,
            label_selector=label_selector(request),
            fields=fields,
            resource_version=query.get("resourceVersion"),
            bookmarks=flag(query.get("allowWatchBookmarks")),
            timeout=float(timeout) if timeout else None,
            send_initial_events=flag(query.get("sendInitialEvents")),
            as_table=wants_table(request.headers.get("Accept", "")),
            include_object=query.get("includeObject", "Metadata"),
        )
        rv = options.resource_version
        if rv not in (None, "") and not rv.isdigit():
            raise ApiError(400, f"resourceVersion: not a resource version: {rv!r}")
        if self._closing:
            raise ApiError(503, "the server is shutting down")
        stream = WatchStream(
            self.cluster,
            self.faults,
            resource,
            options,
            now=self.now,
            bookmark_interval=self.bookmark_interval,
        )
        return await stream.serve(request)

    # --- writes -----------------------------------------------------------------------------

    async def _create(self, request: web.Request, target: Target) -> web.StreamResponse:
        if target.resource.namespaced and target.namespace is None:
            raise ApiError(405, f"POST is not supported on {request.path}: give a namespace")
        obj = self.object_body(await read_body(request), target)
        try:
            with self.dry_run(request):
                created = await self.cluster.create(target.resource.kind, obj)
        except ClusterError as error:  # errors name the object the body names
            raise _api_error(error, target, obj["metadata"].get("name") or "") from error
        return self.respond(request, target.resource, created, 201)

    async def _update(self, request: web.Request, target: Target) -> web.StreamResponse:
        obj = self.object_body(await read_body(request), target)
        with self.dry_run(request):
            updated = await self.cluster.replace(target.resource.kind, obj)
        return self.respond(request, target.resource, updated)

    async def _patch(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        resource, media = target.resource, patch_type(request)
        body = await read_body(request)
        if media == APPLY:
            return await self._apply(request, target, body)
        if isinstance(body, dict):
            body = resource.stored(body)
        with self.dry_run(request):
            # MemoryCluster applies merge and JSON patches itself (and names their errors).
            if media == MERGE:
                if not isinstance(body, dict):
                    raise ApiError(400, f"{media}: the body must be a JSON object")
                result = await self.cluster.patch(
                    resource.kind, target.name, body, target.namespace, "merge"
                )
            elif media == JSON_PATCH:
                if not isinstance(body, list):
                    raise ApiError(400, "json patch: the body must be a JSON array of operations")
                result = await self.cluster.patch(
                    resource.kind, target.name, body, target.namespace, "json"
                )
            else:
                result = await self.patch_through_merge(target, body, media)
        return self.respond(request, resource, result)

    async def patch_through_merge(self, target: Target, patch: Any, media: str) -> JSON:
        """Apply a patch MemoryCluster does not know by sending it the equivalent merge patch."""
        assert target.name is not None
        kind = target.resource.kind
        old = await self.cluster.get(kind, target.name, target.namespace)
        new = patched(old, patch, media, custom=self.is_custom(target.resource))
        return await self.cluster.patch(
            kind, target.name, merge_diff(old, new), target.namespace, "merge"
        )

    async def _apply(self, request: web.Request, target: Target, body: Any) -> web.StreamResponse:
        """Server-side apply, simplified: create, or merge the applied configuration in.

        Field ownership is not tracked: nothing the configuration omits is removed, and
        there are no conflicts between managers (so `force` changes nothing).
        """
        assert target.name is not None
        if not request.query.get("fieldManager"):
            raise ApiError(422, "fieldManager: Required value: is required for apply patch")
        obj = self.object_body(body, target)
        resource = target.resource
        with self.dry_run(request):
            try:
                await self.cluster.get(resource.kind, target.name, target.namespace)
            except NotFound:
                created = await self.cluster.create(resource.kind, obj)
                return self.respond(request, resource, created, 201)
            result = await self.patch_through_merge(target, obj, APPLY)
        return self.respond(request, resource, result)

    async def _delete(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        kind = target.resource.kind
        options = await delete_options(request)
        old = await self.cluster.get(kind, target.name, target.namespace)
        check_preconditions(options, old, target)
        with self.dry_run(request, options) as dry:
            await self.cluster.delete(kind, target.name, target.namespace)
        if dry:
            return self.respond(request, target.resource, old)
        try:
            held = await self.cluster.get(kind, target.name, target.namespace)
        except NotFound:
            return self.respond(request, target.resource, old)
        return self.respond(request, target.resource, held, 202)  # finalizers hold it

    async def _delete_collection(self, request: web.Request, target: Target) -> web.StreamResponse:
        resource = target.resource
        options = await delete_options(request)
        fields = parse_field_selector(request.query.get("fieldSelector"), resource.kind.kind)
        items, version = await self.cluster.list(
            resource.kind, target.namespace, label_selector(request)
        )
        deleted = []
        with self.dry_run(request, options):
            for obj in items:
                if fields.matches(obj):
                    metadata = obj["metadata"]
                    await self.cluster.delete(
                        resource.kind, metadata["name"], metadata.get("namespace")
                    )
                    deleted.append(resource.served(obj))
        body = {
            "kind": f"{resource.kind.kind}List",
            "apiVersion": resource.api_version,
            "metadata": {"resourceVersion": version},
            "items": deleted,
        }
        return json_response(body)

    # --- shared by the handlers -------------------------------------------------------------

    @contextlib.contextmanager
    def dry_run(self, request: web.Request, options: JSON | None = None) -> Iterator[bool]:
        """Inside, writes to the cluster are validated but not stored when the request asks
        for `dryRun=All`; yields whether it did."""
        if dry_run_requested(request, options):
            with self.cluster.dry_run():
                yield True
        else:
            yield False

    def object_body(self, body: Any, target: Target) -> JSON:
        """A request's object, checked against the URL and ready for storage."""
        resource = target.resource
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        obj = dict(body)
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if api_version not in (None, resource.api_version):
            raise ApiError(
                400,
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({resource.api_version})",
            )
        if kind not in (None, resource.kind.kind):
            raise ApiError(
                400,
                f"the kind in the data ({kind}) does not match the expected kind "
                f"({resource.kind.kind})",
            )
        obj["apiVersion"], obj["kind"] = resource.kind.api_version, resource.kind.kind
        metadata = obj.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise Invalid("metadata: must be an object")
        metadata = obj["metadata"] = dict(metadata)
        if resource.namespaced:
            if metadata.get("namespace") not in (None, "", target.namespace):
                raise ApiError(
                    400,
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request",
                )
            metadata["namespace"] = target.namespace
        else:
            metadata.pop("namespace", None)
        if target.name is not None and metadata.get("name") != target.name:
            raise ApiError(
                400,
                f"the name of the object ({metadata.get('name')}) does not match the name "
                f"on the URL ({target.name})",
            )
        return obj

    def respond(
        self, request: web.Request, resource: Resource, obj: JSON, status: int = 200
    ) -> web.Response:
        """One object, as JSON or (when asked) as a one-row Table."""
        served = resource.served(obj)
        if wants_table(request.headers.get("Accept", "")):
            body = table(
                resource.kind.kind,
                [served],
                now=self.now(),
                include_object=request.query.get("includeObject", "Metadata"),
            )
            return json_response(body, status)
        return json_response(served, status)

    def is_custom(self, resource: Resource) -> bool:
        """Custom resources (ours, their aliases, CRDs') take no strategic merge patch."""
        return resource.kind.group == "ebbflow.io" or resource.kind not in self._builtin


def _api_error(error: ClusterError, target: Target, name: str) -> ApiError:
    resource = target.resource
    return from_cluster_error(
        error,
        group=resource.group,
        resource=resource.plural,
        kind=resource.kind.kind,
        name=name,
    )
