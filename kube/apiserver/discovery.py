"""Discovery documents: /version, /api, /apis, the APIResourceLists, and a minimal OpenAPI v3.

kubectl reads the legacy (unaggregated) discovery documents when the server answers
`application/json` to its aggregated-discovery Accept header. The OpenAPI v3 documents carry
only what kubectl looks for: each resource's PATCH operation with its
x-kubernetes-group-version-kind and the `fieldValidation` query parameter. Finding that,
kubectl leaves schema validation to the server instead of fetching /openapi/v2 (served as
protobuf only by the real server, and not by us), so a plain `kubectl apply -f` works.
"""

from __future__ import annotations

import hashlib
import json

from kube.apiserver.resources import GroupVersion, Resource, ResourceTable
from kube.port import JSON

KUBERNETES_VERSION = ("1", "32", "v1.32.0-ebbflow")
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json")
_APPLY_TYPE = "application/apply-patch+yaml"


def version_info() -> JSON:
    major, minor, git_version = KUBERNETES_VERSION
    return {
        "major": major,
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> JSON:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def api_group(group: str, versions: list[str]) -> JSON:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": entries,
        "preferredVersion": entries[0],
    }


def api_group_list(resources: ResourceTable) -> JSON:
    groups = [api_group(group, versions) for group, versions in resources.groups().items()]
    for group in groups:
        del group["kind"], group["apiVersion"]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_resource_list(gv: GroupVersion, resources: list[Resource]) -> JSON:
    entries: list[JSON] = []
    for resource in resources:
        entries.extend(resource.discovery())
    if not gv.group:  # POST /api/v1/namespaces/{ns}/bindings
        entries.append(
            {
                "name": "bindings",
                "singularName": "binding",
                "namespaced": True,
                "kind": "Binding",
                "verbs": ["create"],
            }
        )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv.name,
        "resources": entries,
    }


def openapi_v3_index(resources: ResourceTable) -> JSON:
    """GET /openapi/v3: where each group/version's document is."""
    paths = {}
    for gv in resources.group_versions():
        relative = gv.path.lstrip("/")
        digest = (
            hashlib.sha256(json.dumps(openapi_v3_document(gv, resources), sort_keys=True).encode())
            .hexdigest()[:16]
            .upper()
        )
        paths[relative] = {"serverRelativeURL": f"/openapi/v3/{relative}?hash={digest}"}
    return {"paths": paths}


def openapi_v3_document(gv: GroupVersion, resources: ResourceTable) -> JSON:
    """GET /openapi/v3/apis/{group}/{version}: the operations of one group/version."""
    paths: JSON = {}
    for resource in resources.in_group_version(gv.group, gv.version):
        gvk = {"group": resource.group, "version": resource.version, "kind": resource.kind.kind}
        prefix = gv.path + ("/namespaces/{namespace}" if resource.namespaced else "")
        collection = f"{prefix}/{resource.plural}"
        paths[collection] = {
            "get": _operation("list", gvk, resource),
            "post": _operation("create", gvk, resource),
        }
        paths[collection + "/{name}"] = {
            "get": _operation("get", gvk, resource),
            "put": _operation("update", gvk, resource),
            "patch": _operation("patch", gvk, resource),
            "delete": _operation("delete", gvk, resource),
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION[2]},
        "paths": paths,
        "components": {"schemas": {}},
    }


def _operation(action: str, gvk: JSON, resource: Resource) -> JSON:
    operation: JSON = {
        "operationId": f"{action}{resource.kind.kind}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
        "parameters": [
            _query("dryRun"),
            _query("fieldManager"),
            _query("fieldValidation"),
        ],
        "responses": {"200": {"description": "OK"}},
    }
    if action == "patch":
        # Not strategic merge: kubectl would then want full schemas to compute one from
        # OpenAPI v3; without it, kubectl falls back to its compiled-in types.
        schema = {"type": "object"}
        content = {media: {"schema": schema} for media in (*_PATCH_TYPES, _APPLY_TYPE)}
        operation["requestBody"] = {"content": content, "required": True}
    return operation


def _query(name: str) -> JSON:
    return {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
