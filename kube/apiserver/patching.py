"""Request bodies and patch types: parsing, the four PATCH media types, and merge diffs."""

from __future__ import annotations

import json
from typing import Any

import yaml
from aiohttp import web

from kube.apiserver.status import ApiError
from kube.apiserver.strategic import strategic_merge
from kube.patches import ingest_json, json_patch, merge_patch
from kube.port import JSON, Invalid

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE, APPLY, STRATEGIC)


async def read_body(request: web.Request) -> Any:
    """The request's JSON (or, for YAML media types, YAML) body; 400 if it does not parse.

    Protobuf and CBOR bodies get a 415: kubectl's imperative `create <kind>`, `run` and
    `expose` send protobuf, while `kubectl apply -f` and `kubectl create -f` send JSON.
    """
    media = request.content_type
    if "protobuf" in media or "cbor" in media:
        raise ApiError(
            415,
            f"the body of the request was in an unknown format ({media}) - accepted media "
            "types include: application/json, application/yaml (send a manifest with "
            "`kubectl apply -f` or `kubectl create -f`)",
        )
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "the request body is empty")
    try:
        if "yaml" in request.content_type:
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as error:
        message = f"the request body is not valid {request.content_type}: {error}"
        raise ApiError(400, message) from error


def patch_type(request: web.Request) -> str:
    media = request.content_type
    if media not in PATCH_TYPES:
        raise ApiError(
            415,
            f"the body of the request was in an unknown format ({media}) - accepted media "
            f"types include: {', '.join(PATCH_TYPES)}",
        )
    return media


def patched(current: JSON, patch: Any, media: str, *, custom: bool) -> JSON:
    """`current` with `patch` of media type `media` applied (a new document).

    Custom resources take no strategic merge patch (415, as kube-apiserver answers);
    server-side apply of one merges the applied configuration as a JSON merge patch.
    """
    if media == JSON_PATCH:
        if not isinstance(patch, list):
            raise ApiError(400, "json patch: the body must be a JSON array of operations")
        return json_patch(current, patch)
    if not isinstance(patch, dict):
        raise ApiError(400, f"{media}: the body must be a JSON object")
    if media == STRATEGIC and custom:
        raise ApiError(
            415,
            "the body of the request was in an unknown format - accepted media types "
            f"include: {JSON_PATCH}, {MERGE}, {APPLY}",
        )
    if media == MERGE or custom:
        result = merge_patch(current, ingest_json(patch))
    else:
        result = strategic_merge(current, patch)
    if not isinstance(result, dict):
        raise Invalid("the patched document must be a JSON object")
    return result


def merge_diff(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch that turns `old` into `new` (lists are replaced whole)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    diff: JSON = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            diff[key] = value
        elif old[key] != value:
            diff[key] = merge_diff(old[key], value)
    return diff
