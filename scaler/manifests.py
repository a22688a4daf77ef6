"""Load and validate manifests: multi-document YAML in, typed objects or located errors out.

Each error names the file, the document and the field path, e.g.
`so.yaml:doc 2: spec.triggers[1].metadata.lagThreshold: must be a positive number, got "ten"`.
One bad document never hides the others: every document is checked and reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from scaler.api import API_VERSIONS, MODELS, ScaledObject
from scalers import registry

_MESSAGES = {
    "missing": "required",
    "extra_forbidden": "unknown field",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
}


@dataclass(frozen=True)
class ManifestIssue:
    """One problem in one document, located by file, document number and field path."""

    file: str
    document: int
    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:doc {self.document}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


@dataclass
class LoadedDocument:
    """One YAML document: its kind and name when known, the typed object if valid."""

    file: str
    document: int
    kind: str | None
    name: str | None
    obj: BaseModel | None = None
    issues: list[ManifestIssue] = field(default_factory=list)
    raw: dict[str, Any] | None = None  # the document as parsed, when it is a mapping

    @property
    def ok(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)


class ManifestError(ValueError):
    """A manifest that failed validation; carries every issue found."""

    def __init__(self, issues: Sequence[ManifestIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


def format_path(loc: Sequence[str | int]) -> str:
    """`("spec", "triggers", 1, "metadata", "x")` -> `spec.triggers[1].metadata.x`."""
    out = ""
    for part in loc:
        if isinstance(part, int) or "." in part or "/" in part:
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _describe(error: Any) -> str:
    kind = error["type"]
    message = str(_MESSAGES.get(kind, error["msg"]))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if kind == "literal_error" or kind == "enum":
        message = "must be one of " + error["ctx"]["expected"].replace("' or '", "', '")
    elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {
            "greater_than_equal": ">=",
            "greater_than": ">",
            "less_than_equal": "<=",
            "less_than": "<",
        }[kind]
        limit = next(iter(error["ctx"].values()))
        shown_limit = f"{limit:g}" if isinstance(limit, float) else str(limit)
        message = f"must be {words} {shown_limit}"
    elif kind == "too_short":
        message = f"must have at least {error['ctx']['min_length']} item(s)"
    value = error.get("input")
    quoted = isinstance(value, str) and (repr(value) in message or json.dumps(value) in message)
    shown = isinstance(value, str | int | float | bool) and value != "" and not quoted
    if kind not in ("missing", "extra_forbidden") and shown:
        message += f", got {json.dumps(value)}"
    return message


def issues_from(exc: ValidationError, file: str, document: int) -> list[ManifestIssue]:
    """Turn a pydantic ValidationError into located, readable issues."""
    issues = []
    for error in exc.errors():
        loc = list(error["loc"])
        # trigger metadata models report pydantic's aliases already; drop union tags
        path = format_path([p for p in loc if p not in ("function-after", "function-wrap")])
        issues.append(ManifestIssue(file, document, path, _describe(error)))
    return issues


def validation_context() -> dict[str, Any]:
    """Context that makes trigger metadata validate through the scaler registry."""
    return {"trigger_metadata": registry.parse_metadata, "trigger_types": registry.known_types()}


def _metadata_warnings(obj: BaseModel, file: str, document: int) -> list[ManifestIssue]:
    spec = getattr(obj, "spec", None)
    triggers = getattr(spec, "triggers", None) or []
    warnings = []
    for i, trigger in enumerate(triggers):
        parsed = registry.parse_metadata(trigger.type, trigger.metadata, trigger.metric_type)
        for key in parsed.unknown_keys():
            warnings.append(
                ManifestIssue(
                    file,
                    document,
                    f"spec.triggers[{i}].metadata.{key}",
                    f"not used by the {trigger.type} trigger; ignored",
                    severity="warning",
                )
            )
    return warnings


# kind -> apiVersion ("group/version", or a bare group for any version) -> model
_KINDS: dict[str, dict[str, type[BaseModel]]] = {}


def register_kind(api_versions: Sequence[str], kind: str, model: type[BaseModel]) -> None:
    """Validate documents of `kind` under each of `api_versions` with `model`.

    An entry is an apiVersion (`karpenter.sh/v1`) or a bare group (`karpenter.sh`: any
    version). Registering again adds apiVersions; the last model for one wins.
    """
    if not api_versions:
        raise ValueError(f"register_kind({kind!r}): at least one apiVersion or group is needed")
    accepted = _KINDS.setdefault(kind, {})
    for api_version in api_versions:
        accepted[api_version] = model


def registered_kinds() -> Mapping[str, Sequence[str]]:
    """Every kind `validate_document` checks, with the apiVersions (or groups) it accepts."""
    return {kind: tuple(accepted) for kind, accepted in _KINDS.items()}


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else api_version


def _our_groups() -> set[str]:
    return {_group(v) for accepted in _KINDS.values() for v in accepted}


for _kind, _model in MODELS.items():
    register_kind(API_VERSIONS, _kind, _model)


def validate_document(raw: Any, file: str, document: int) -> LoadedDocument:
    """Validate one parsed YAML document of any kind we know."""
    if not isinstance(raw, dict):
        doc = LoadedDocument(file, document, None, None)
        doc.issues.append(
            ManifestIssue(file, document, "", "must be a mapping (a Kubernetes object)")
        )
        return doc
    kind = raw.get("kind")
    meta = raw.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    doc = LoadedDocument(file, document, kind if isinstance(kind, str) else None, name, raw=raw)
    api_version = raw.get("apiVersion")
    group = api_version.rpartition("/")[0] if isinstance(api_version, str) else ""
    accepted = _KINDS.get(kind) if isinstance(kind, str) else None
    if accepted is None:
        if isinstance(kind, str) and group not in _our_groups():
            # a Deployment or Secret beside a ScaledObject: not ours to check, but said so
            message = f"{api_version} {kind} is not a kind ebbflow validates; skipped"
            doc.issues.append(ManifestIssue(file, document, "kind", message, "warning"))
            return doc
        # the kinds of the document's group, or all of them when the group says nothing
        same_group = [k for k, a in _KINDS.items() if group in {_group(v) for v in a}]
        known = ", ".join(sorted(same_group or _KINDS))
        doc.issues.append(
            ManifestIssue(file, document, "kind", f"unknown kind {kind!r}; known: {known}")
        )
        return doc
    model = accepted.get(api_version) if isinstance(api_version, str) else None
    model = model or accepted.get(group)
    if model is None:
        doc.issues.append(
            ManifestIssue(
                file,
                document,
                "apiVersion",
                f"must be one of {', '.join(accepted)}, got {json.dumps(api_version)}",
            )
        )
        return doc
    try:
        doc.obj = model.model_validate(raw, context=validation_context())
    except ValidationError as exc:
        doc.issues.extend(issues_from(exc, file, document))
        return doc
    doc.issues.extend(_metadata_warnings(doc.obj, file, document))
    return doc


def load_documents(path: Path) -> Iterator[LoadedDocument]:
    """Every document of a YAML file, validated. Unreadable files yield one error."""
    file = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        doc = LoadedDocument(file, 0, None, None)
        doc.issues.append(ManifestIssue(file, 0, "", f"cannot read: {exc.strerror or exc}"))
        yield doc
        return
    number = 0
    documents = yaml.safe_load_all(text)
    while True:
        try:
            raw = next(documents)
        except StopIteration:
            return
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc)
            doc = LoadedDocument(file, number + 1, None, None)
            doc.issues.append(
                ManifestIssue(file, number + 1, "", f"invalid YAML{where}: {problem}")
            )
            yield doc
            return  # the parser cannot resynchronise after a syntax error
        if raw is None:  # empty document between `---` separators
            continue
        number += 1
        yield validate_document(raw, file, number)


def load_scaled_object(path: Path) -> ScaledObject:
    """The single ScaledObject in `path` (raises ManifestError naming file and field)."""
    docs = list(load_documents(path))
    issues = [i for d in docs for i in d.issues if i.severity == "error"]
    if issues:
        raise ManifestError(issues)
    objects = [d.obj for d in docs if isinstance(d.obj, ScaledObject)]
    if len(objects) != 1:
        raise ManifestError(
            [
                ManifestIssue(
                    str(path), 0, "", f"expected exactly one ScaledObject, found {len(objects)}"
                )
            ]
        )
    return objects[0]
