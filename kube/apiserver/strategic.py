"""Strategic merge patch, the subset kubectl and client libraries send for built-in kinds.

Supported (apimachinery's `strategicpatch`, without the Go type information):
- objects merge key by key, `null` deletes a key (as in a JSON merge patch);
- lists of objects whose field name has a known merge key merge item by item on that key:
  containers/initContainers/ephemeralContainers/env/volumes/imagePullSecrets/resourceClaims
  by `name`, volumeMounts by `mountPath`, volumeDevices by `devicePath`, ports by
  `containerPort` (or `port`), conditions by `type`, ownerReferences by `uid`, hostAliases
  by `ip`, topologySpreadConstraints by `topologyKey`; `finalizers` merges as a set;
  every other list is replaced whole (what Go does for atomic lists);
- directives: `$patch: replace|delete|merge` (in an object or as a list item),
  `$retainKeys`, `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>`.
Not supported: per-type strategies beyond those field names (a custom resource's lists are
replaced whole, which is also what the real server does for CRDs: it refuses strategic merge
patches on them, and so do we, with 415, through the caller).
"""

from __future__ import annotations

from typing import Any

from kube.apiserver.status import ApiError
from kube.patches import copy_json

_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "resourceClaims": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}
_SET_LISTS = frozenset({"finalizers"})  # primitive lists with patchStrategy "merge"
_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"


def strategic_merge(target: Any, patch: Any) -> Any:
    """`target` with the strategic merge `patch` applied; neither argument is changed."""
    if not isinstance(patch, dict):
        raise ApiError(400, "strategic merge patch: must be a JSON object")
    return _merge_object(copy_json(target) if isinstance(target, dict) else {}, patch)


def _merge_object(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy_json(v) for k, v in patch.items() if not k.startswith("$")}
    if directive not in (None, "merge"):
        raise ApiError(400, f"strategic merge patch: unknown $patch directive {directive!r}")
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key == "$patch" or key == "$retainKeys":
            continue
        if key.startswith(_ORDER):
            orders[key[len(_ORDER) :]] = value
        elif key.startswith(_DELETE_PRIMITIVES):
            field = key[len(_DELETE_PRIMITIVES) :]
            current = target.get(field)
            if isinstance(current, list):
                target[field] = [item for item in current if item not in value]
        elif value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            if value.get("$patch") == "delete":
                target.pop(key, None)
            else:
                current = target.get(key)
                target[key] = _merge_object(current if isinstance(current, dict) else {}, value)
        elif isinstance(value, list):
            target[key] = _merge_list(key, target.get(key), value)
        else:
            target[key] = value
    for field, order in orders.items():
        if isinstance(target.get(field), list):
            target[field] = _ordered(field, target[field], order)
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        target = {k: v for k, v in target.items() if k in retain}
    return target


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    items = current if isinstance(current, list) else []
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [copy_json(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    if field in _SET_LISTS:
        return items + [copy_json(item) for item in patch if item not in items]
    key = _merge_key(field, patch)
    if key is None or not all(isinstance(item, dict) for item in patch):
        return [copy_json(item) for item in patch]
    merged = list(items)
    for item in patch:
        index = _index_of(merged, key, item.get(key))
        if item.get("$patch") == "delete":
            if index is not None:
                del merged[index]
        elif index is None:
            merged.append(_merge_object({}, item))
        else:
            merged[index] = _merge_object(merged[index], item)
    return merged


def _merge_key(field: str, patch: list[Any]) -> str | None:
    key = _MERGE_KEYS.get(field)
    if (
        field == "ports"
        and patch
        and isinstance(patch[0], dict)
        and "containerPort" not in patch[0]
    ):
        return "port"  # a Service's ports
    return key


def _index_of(items: list[Any], key: str, value: Any) -> int | None:
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get(key) == value:
            return index
    return None


def _ordered(field: str, items: list[Any], order: list[Any]) -> list[Any]:
    """`items` in the order `$setElementOrder` gives; items it does not name keep theirs, after."""
    key = _MERGE_KEYS.get(field)

    def identity(item: Any) -> Any:
        if isinstance(item, dict):
            return item.get(key or "") if key else None
        return item

    wanted = [identity(entry) if isinstance(entry, dict) else entry for entry in order]
    if (
        field == "ports"
        and order
        and isinstance(order[0], dict)
        and "containerPort" not in order[0]
    ):
        wanted = [entry.get("port") for entry in order if isinstance(entry, dict)]
        key = "port"
    position = {value: index for index, value in enumerate(wanted)}
    ranked = sorted(
        enumerate(items),
        key=lambda pair: (position.get(identity(pair[1]), len(position)), pair[0]),
    )
    return [item for _, item in ranked]
