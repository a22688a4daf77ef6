"""Field selectors (`?fieldSelector=spec.nodeName=n1,status.phase!=Failed`).

Like apimachinery's `fields.ParseSelector`: terms joined by `,`, each `field=value`,
`field==value` or `field!=value`, with `\\` escaping `,`, `=` and `!`. Every kind selects
on metadata.name and metadata.namespace; a few kinds have more (the ones controllers use).
An unsupported field is a 400, as the real server answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kube.apiserver.status import ApiError
from kube.port import JSON

_COMMON = ("metadata.name", "metadata.namespace")
# The fields each kind's registry strategy exposes (pkg/registry/*/strategy.go, a subset).
_BY_KIND: dict[str, tuple[str, ...]] = {
    "Pod": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Node": ("spec.unschedulable",),
    "Namespace": ("status.phase",),
    "Secret": ("type",),
    "Event": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "Job": ("status.successful",),
}


@dataclass(frozen=True)
class FieldTerm:
    field: str
    value: str
    negated: bool

    def matches(self, obj: JSON) -> bool:
        return (field_value(obj, self.field) == self.value) != self.negated


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[FieldTerm, ...] = ()

    def matches(self, obj: JSON) -> bool:
        return all(term.matches(obj) for term in self.terms)

    def __bool__(self) -> bool:
        return bool(self.terms)


def parse_field_selector(text: str | None, kind: str) -> FieldSelector:
    """Parse `text` for objects of `kind`; ApiError(400) naming the bad term or field."""
    if not text:
        return FieldSelector()
    supported = _COMMON + _BY_KIND.get(kind, ())
    terms = []
    for raw in _split(text, ","):
        if not raw:
            continue
        term = _term(raw)
        if term.field not in supported:
            raise ApiError(400, f"field label not supported: {term.field}")
        terms.append(term)
    return FieldSelector(tuple(terms))


def field_value(obj: JSON, path: str) -> str:
    """The string a field selector compares: "" when absent, booleans as true/false."""
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if path == "metadata.namespace" and value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):  # Event `source`: the component
        return str(value.get("component", ""))
    return "" if value is None else str(value)


def _term(raw: str) -> FieldTerm:
    for operator in ("!=", "==", "="):
        index = _find(raw, operator)
        if index >= 0:
            field, value = raw[:index].strip(), _unescape(raw[index + len(operator) :])
            if not field:
                break
            return FieldTerm(field, value, operator == "!=")
    raise ApiError(
        400, f"invalid field selector term {raw!r}: expected field=value or field!=value"
    )


def _find(text: str, token: str) -> int:
    """The first unescaped `token` in `text`, or -1."""
    index = 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text.startswith(token, index):
            return index
        index += 1
    return -1


def _split(text: str, separator: str) -> list[str]:
    parts, start = [], 0
    while (index := _find(text[start:], separator)) >= 0:
        parts.append(text[start : start + index])
        start += index + 1
    parts.append(text[start:])
    return parts


def _unescape(text: str) -> str:
    out, index = [], 0
    while index < len(text):
        if text[index] == "\\" and index + 1 < len(text):
            index += 1
        out.append(text[index])
        index += 1
    return "".join(out)
