"""Pieces of a resource request shared by the handlers: its target, query flags, responses."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kube.apiserver.patching import read_body
from kube.apiserver.resources import Resource
from kube.apiserver.status import ApiError
from kube.port import JSON, Invalid
from kube.selectors import parse_selector


@dataclass(frozen=True)
class Target:
    """What a resource request addresses."""

    resource: Resource
    namespace: str | None  # None: cluster-scoped, or a list across namespaces
    name: str | None = None
    subresource: str | None = None


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(error: ApiError) -> web.Response:
    return json_response(error.status(), error.code, error.headers())


def not_found() -> ApiError:
    return ApiError(404, "the server could not find the requested resource")


def flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true")


def label_selector(request: web.Request) -> str | None:
    """`?labelSelector=`, checked; a bad one is a 400 as kube-apiserver answers."""
    text = request.query.get("labelSelector")
    if text:
        try:
            parse_selector(text)
        except Invalid as error:
            raise ApiError(400, f"unable to parse requirement: {error}") from error
    return text or None


def dry_run_requested(request: web.Request, options: JSON | None = None) -> bool:
    """Whether the request asks for `dryRun=All` (query, or DeleteOptions.dryRun)."""
    values = list(request.query.getall("dryRun", []))
    values += list((options or {}).get("dryRun") or [])
    unknown = [v for v in values if v != "All"]
    if unknown:
        raise ApiError(400, f"dryRun: unsupported value {unknown[0]!r}: expected 'All'")
    return bool(values)


async def delete_options(request: web.Request) -> JSON:
    """The DeleteOptions body of a DELETE (or an eviction's deleteOptions); {} if none."""
    if not (await request.read()).strip():
        return {}
    body = await read_body(request)
    if not isinstance(body, dict):
        raise ApiError(400, "DeleteOptions: the body must be a JSON object")
    return body


def check_preconditions(options: JSON, obj: JSON, target: Target) -> None:
    """DeleteOptions.preconditions (uid, resourceVersion): 409 when the object moved on."""
    preconditions = options.get("preconditions") or {}
    metadata = obj["metadata"]
    for field in ("uid", "resourceVersion"):
        wanted = preconditions.get(field)
        if wanted and wanted != metadata.get(field):
            raise ApiError(
                409,
                f"Precondition failed: {field} in precondition: {wanted}, {field} in object "
                f"meta: {metadata.get(field)}",
                reason="Conflict",
                details={"name": target.name or "", "kind": target.resource.plural},
            )


def request_verb(request: web.Request, target: Target) -> str:
    """The Kubernetes verb of a resource request (get, list, watch, create, ...)."""
    collection = target.name is None
    match request.method:
        case "GET" | "HEAD":
            if flag(request.query.get("watch")):
                return "watch"
            return "list" if collection else "get"
        case "POST":
            if collection or target.subresource in ("eviction", "binding"):
                return "create"
        case "PUT":
            if not collection:
                return "update"
        case "PATCH":
            if not collection:
                return "patch"
        case "DELETE":
            return "deletecollection" if collection else "delete"
    raise ApiError(405, f"{request.method} is not supported on {request.path}")


def page(items: list[JSON], limit: str | None, token: str | None) -> tuple[list[JSON], str]:
    """One page of a list (`limit`, `continue`): the items after the token's key."""

    def key(obj: JSON) -> str:
        metadata = obj["metadata"]
        return f"{metadata.get('namespace', '')}/{metadata['name']}"

    if token:
        try:
            start = json.loads(base64.urlsafe_b64decode(token.encode()))["start"]
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            raise ApiError(400, f"continue: not a continue token: {token!r}") from error
        items = [obj for obj in items if key(obj) > start]
    if not limit:
        return items, ""
    if not limit.isdigit():
        raise ApiError(400, f"limit: not a number: {limit!r}")
    size = int(limit)
    if size == 0 or len(items) <= size:
        return items, ""
    page = items[:size]
    next_token = base64.urlsafe_b64encode(json.dumps({"start": key(page[-1])}).encode())
    return page, next_token.decode()
