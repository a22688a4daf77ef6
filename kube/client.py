"""The Cluster port over `kubernetes_asyncio`: a real API server, via kubeconfig or in-cluster.

One pooled ApiClient serves every call. Requests that fail with 429 or 5xx (or cannot
reach the server) are retried with backoff, honouring Retry-After (except an eviction's 429,
which is a PodDisruptionBudget's answer for the caller to requeue); 409 surfaces as
`Conflict` for the caller to re-read and re-apply; a watch that outlives its
resourceVersion raises `Gone` so the caller re-lists. Status codes map to the port's typed
errors, so retry decisions are made by type, never by matching strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Literal

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException

from kube.port import (
    EVENTS,
    JSON,
    AlreadyExists,
    ClusterError,
    Conflict,
    Gone,
    Invalid,
    Kind,
    NotFound,
    PatchType,
    PermanentError,
    Scale,
    ServerError,
    TemporaryError,
    TooManyRequests,
    WatchEvent,
)

log = logging.getLogger("ebbflow.kube")

_PATCH_CONTENT = {"merge": "application/merge-patch+json", "json": "application/json-patch+json"}


def _error(status: int, body: str, retry_after: float | None = None) -> ClusterError:
    try:
        message = json.loads(body).get("message") or body
    except (ValueError, AttributeError):
        message = body or f"HTTP {status}"
    if status == 404:
        return NotFound(message)
    if status == 409:
        reason = ""
        with contextlib.suppress(ValueError, AttributeError):
            reason = json.loads(body).get("reason", "")
        return AlreadyExists(message) if reason == "AlreadyExists" else Conflict(message)
    if status == 410:
        return Gone(message)
    if status == 422 or status == 400:
        return Invalid(message)
    if status == 429:
        return TooManyRequests(message, retry_after)
    if status >= 500:
        error = ServerError(message)
        error.status = status
        return error
    permanent = PermanentError(message)
    permanent.status = status
    return permanent


def path_of(
    kind: Kind, namespace: str | None = None, name: str | None = None, sub: str | None = None
) -> str:
    """The REST path of a collection, an object or its subresource."""
    base = f"/api/{kind.version}" if not kind.group else f"/apis/{kind.group}/{kind.version}"
    if kind.namespaced and namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{kind.plural}"
    if name:
        base += f"/{name}"
    if sub:
        base += f"/{sub}"
    return base


class KubeClient:
    """A Cluster backed by a real API server."""

    def __init__(
        self,
        api: k8s.ApiClient,
        retries: int = 5,
        backoff: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        request_timeout: float = 30.0,
    ) -> None:
        self.api = api
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self.request_timeout = request_timeout

    @classmethod
    async def from_kubeconfig(
        cls, path: str | None = None, context: str | None = None
    ) -> KubeClient:
        """From a kubeconfig file (default: $KUBECONFIG or ~/.kube/config), else in-cluster."""
        configuration = k8s.Configuration()
        try:
            await k8s_config.load_kube_config(
                config_file=path, context=context, client_configuration=configuration
            )
        except k8s_config.ConfigException:
            if path is not None:
                raise
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return cls(k8s.ApiClient(configuration))

    async def close(self) -> None:
        await self.api.close()

    # --- the transport ------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        stream: bool = False,
        deadline: float | None = None,
    ) -> Any:
        """One call with retries on 429/5xx/unreachable; returns parsed JSON or the response."""
        url = f"{self.api.configuration.host}{path}"
        headers = {"Accept": "application/json", "Content-Type": content_type}
        auth_query: list[Any] = []
        await self.api.update_params_for_auth(headers, auth_query, ["BearerToken"])
        params: Any = [(k, v) for k, v in (query or {}).items() if v is not None] + auth_query

        def send() -> Awaitable[Any]:
            return self.api.rest_client.request(
                method,
                url,
                query_params=params,
                headers=headers,
                body=body,
                _preload_content=False,
                _request_timeout=deadline if deadline is not None else self.request_timeout,
            )

        return await self._retrying(f"{method} {path}", send, stream=stream)

    async def _retrying(
        self,
        what: str,
        send: Callable[[], Awaitable[Any]],
        stream: bool = False,
        retry_throttled: bool = True,
    ) -> Any:
        """`send()` (a raw, unread response) until it succeeds or fails for good; returns
        parsed JSON, or the response itself when `stream`."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await send()
            except ApiException as exc:
                body_text = exc.body.decode() if isinstance(exc.body, bytes) else exc.body
                error = _error(exc.status or 500, body_text or str(exc), _retry_after(exc.headers))
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                error = ServerError(f"{what}: {type(exc).__name__}: {exc}")
            else:
                if stream:
                    return response
                text = await response.text()
                if response.status >= 400:
                    error = _error(response.status, text, _retry_after(response.headers))
                else:
                    return json.loads(text) if text else {}
            retriable = isinstance(error, TemporaryError) and not isinstance(error, Conflict | Gone)
            if isinstance(error, TooManyRequests) and not retry_throttled:
                retriable = False
            if not retriable or attempt > self.retries:
                raise error
            wait = self.backoff * 2 ** (attempt - 1)
            if isinstance(error, TooManyRequests) and error.retry_after is not None:
                wait = error.retry_after
            log.info("%s: %s; retry %d in %.1fs", what, error, attempt, wait)
            await self._sleep(wait)

    # --- the Cluster port ---------------------------------------------------------------

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> JSON:
        result: JSON = await self._request("GET", path_of(kind, namespace, name))
        return result

    async def list(
        self, kind: Kind, namespace: str | None = None, label_selector: str | None = None
    ) -> tuple[list[JSON], str]:
        data = await self._request(
            "GET", path_of(kind, namespace), {"labelSelector": label_selector}
        )
        items = data.get("items") or []
        for item in items:  # list items omit apiVersion/kind; callers expect whole objects
            item.setdefault("apiVersion", kind.api_version)
            item.setdefault("kind", kind.kind)
        return items, str((data.get("metadata") or {}).get("resourceVersion", ""))

    async def watch(
        self,
        kind: Kind,
        namespace: str | None = None,
        label_selector: str | None = None,
        resource_version: str | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Stream changes; resumes after each BOOKMARK/event version; raises Gone on 410."""
        version = resource_version
        query = {
            "watch": "1",
            "labelSelector": label_selector,
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "300",
        }
        response = await self._request(
            "GET", path_of(kind, namespace), query, stream=True, deadline=330
        )
        try:
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                kind_of_event = event.get("type")
                obj = event.get("object") or {}
                if kind_of_event == "ERROR":
                    code = int(obj.get("code") or 500)
                    raise _error(code, json.dumps(obj))
                if kind_of_event in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
                    yield WatchEvent(kind_of_event, obj)
        finally:
            response.release()

    async def create(self, kind: Kind, obj: JSON) -> JSON:
        namespace = (obj.get("metadata") or {}).get("namespace")
        result: JSON = await self._request("POST", path_of(kind, namespace), body=obj)
        return result

    async def replace(self, kind: Kind, obj: JSON) -> JSON:
        meta = obj.get("metadata") or {}
        path = path_of(kind, meta.get("namespace"), meta["name"])
        result: JSON = await self._request("PUT", path, body=obj)
        return result

    async def patch(
        self,
        kind: Kind,
        name: str,
        patch: Any,
        namespace: str | None = None,
        patch_type: PatchType = "merge",
    ) -> JSON:
        result: JSON = await self._request(
            "PATCH",
            path_of(kind, namespace, name),
            body=patch,
            content_type=_PATCH_CONTENT[patch_type],
        )
        return result

    async def delete(self, kind: Kind, name: str, namespace: str | None = None) -> None:
        await self._request("DELETE", path_of(kind, namespace, name))

    async def get_scale(self, kind: Kind, name: str, namespace: str) -> Scale:
        data = await self._request("GET", path_of(kind, namespace, name, "scale"))
        return _scale(data, namespace, name)

    async def patch_scale(self, kind: Kind, name: str, namespace: str, replicas: int) -> Scale:
        data = await self._request(
            "PATCH",
            path_of(kind, namespace, name, "scale"),
            body={"spec": {"replicas": replicas}},
            content_type=_PATCH_CONTENT["merge"],
        )
        return _scale(data, namespace, name)

    async def patch_status(
        self, kind: Kind, name: str, status: Mapping[str, Any], namespace: str | None = None
    ) -> JSON:
        result: JSON = await self._request(
            "PATCH",
            path_of(kind, namespace, name, "status"),
            body={"status": dict(status)},
            content_type=_PATCH_CONTENT["merge"],
        )
        return result

    async def record_event(
        self,
        regarding: JSON,
        reason: str,
        message: str,
        type: Literal["Normal", "Warning"] = "Normal",
    ) -> None:
        meta = regarding.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta.get('name', 'object')}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": regarding.get("apiVersion"),
                "kind": regarding.get("kind"),
                "name": meta.get("name"),
                "namespace": namespace,
                "uid": meta.get("uid"),
            },
            "reason": reason,
            "message": message,
            "type": type,
            "source": {"component": "ebbflow"},
        }
        await self.create(EVENTS, event)

    async def evict(
        self, name: str, namespace: str, grace_period_seconds: int | None = None
    ) -> None:
        eviction = k8s.V1Eviction(
            api_version="policy/v1",
            kind="Eviction",
            metadata=k8s.V1ObjectMeta(name=name, namespace=namespace),
            delete_options=k8s.V1DeleteOptions(grace_period_seconds=grace_period_seconds),
        )
        create = k8s.CoreV1Api(self.api).create_namespaced_pod_eviction
        # 429 is the PDB's answer (kube-apiserver, Karpenter's eviction queue): the caller
        # requeues after retry_after rather than this call blocking on it
        await self._post_to_pod(create, name, namespace, eviction, retry_throttled=False)

    async def bind(self, name: str, namespace: str, node: str) -> None:
        binding = k8s.V1Binding(
            api_version="v1",
            kind="Binding",
            metadata=k8s.V1ObjectMeta(name=name, namespace=namespace),
            target=k8s.V1ObjectReference(api_version="v1", kind="Node", name=node),
        )
        create = k8s.CoreV1Api(self.api).create_namespaced_pod_binding
        await self._post_to_pod(create, name, namespace, binding)

    async def _post_to_pod(
        self,
        create: Callable[..., Awaitable[Any]],
        name: str,
        namespace: str,
        body: Any,
        retry_throttled: bool = True,
    ) -> None:
        """POST `body` to a pod subresource through the typed API, with our error mapping."""
        await self._retrying(
            f"{type(body).__name__} of pod {namespace}/{name}",
            # raw response: V1Binding cannot deserialize the Status the server answers
            # (target is required; kubernetes-client/python#825)
            lambda: create(
                name,
                namespace,
                body,
                _preload_content=False,
                _request_timeout=self.request_timeout,
            ),
            retry_throttled=retry_throttled,
        )


def _retry_after(headers: Any) -> float | None:
    value = (headers or {}).get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _scale(data: JSON, namespace: str, name: str) -> Scale:
    spec = data.get("spec") or {}
    status = data.get("status") or {}
    return Scale(
        namespace=namespace,
        name=name,
        replicas=int(spec.get("replicas") or 0),
        status_replicas=int(status.get("replicas") or 0),
        selector=str(status.get("selector") or ""),
        resource_version=str((data.get("metadata") or {}).get("resourceVersion", "")),
    )
