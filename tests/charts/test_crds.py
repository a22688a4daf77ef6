"""CRDs generated from the pydantic models: checked in up to date, structural, and agreeing
with the models on real manifests and on each CEL rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml
from pydantic import ValidationError

from ebbflow.commands.crds import chart_files
from ebbflow.crds import CRD_KINDS, generate_crds
from scaler.api import ScaledObject

CHART = Path(__file__).resolve().parents[2] / "charts" / "ebbflow"
KEDA_EXAMPLES = Path(__file__).resolve().parents[1] / "manifests" / "keda"


def test_checked_in_crds_are_the_generated_ones() -> None:
    generated = {k: v for k, v in chart_files().items() if k.endswith(".yaml") and "crds/" in k}
    checked_in = {
        str(path.relative_to(CHART)): path.read_text()
        for folder in ("crds", "compat-crds")
        for path in (CHART / folder).glob("*.yaml")
    }
    assert sorted(checked_in) == sorted(generated), "run `ebbflow chart generate`"
    for name, text in generated.items():
        assert checked_in[name] == text, f"{name} is stale: run `ebbflow chart generate`"


def test_every_kind_has_ours_and_an_upstream_crd() -> None:
    names = {crd.name: crd for crd in generate_crds()}
    for wanted in (
        "scaledobjects.ebbflow.io",
        "scaledobjects.keda.sh",
        "httpscaledobjects.http.keda.sh",
        "nodepools.karpenter.sh",
        "ec2nodeclasses.karpenter.k8s.aws",
        "nodeclasses.ebbflow.io",
    ):
        assert wanted in names
    assert names["scaledobjects.ebbflow.io"].compat is None
    assert names["scaledobjects.keda.sh"].compat == "keda"
    version = names["nodepools.ebbflow.io"].body["spec"]["versions"][0]
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"


def _walk(node: Any, where: str = "$") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        found.append((where, node))
        for key in ("properties",):
            for name, child in (node.get(key) or {}).items():
                found += _walk(child, f"{where}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                found += _walk(node[key], f"{where}[]")
    return found


@pytest.mark.parametrize("crd", generate_crds(), ids=lambda crd: crd.name)
def test_schema_is_structural(crd: Any) -> None:
    """apiextensions/v1's rules: a type everywhere (or an explicit escape), no refs or
    unions, no additionalProperties beside properties, no uniqueItems."""
    schema = crd.body["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for where, node in _walk(schema):
        assert not {"$ref", "anyOf", "oneOf", "allOf", "uniqueItems", "const", "title"} & set(
            node
        ), where
        escapes = ("x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string")
        assert "type" in node or any(node.get(e) for e in escapes), where
        assert not ("properties" in node and "additionalProperties" in node), where


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0's nullable/boolean exclusiveMinimum as JSON Schema, to check manifests."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: _openapi_to_jsonschema(v)
        for k, v in node.items()
        if not k.startswith("x-kubernetes") and k not in ("nullable", "default")
    }
    if node.get("exclusiveMinimum") is True:
        out["exclusiveMinimum"] = out.pop("minimum")
    if node.get("properties") is not None and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False  # the API server prunes (or, strict, rejects) them
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def test_keda_manifests_the_models_accept_the_crds_accept() -> None:
    import jsonschema

    crd = {c.name: c for c in generate_crds()}["scaledobjects.keda.sh"]
    schema = _openapi_to_jsonschema(crd.body["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    validator = jsonschema.Draft7Validator(schema)
    checked = 0
    for path in sorted(KEDA_EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "ScaledObject":
                continue
            try:
                ScaledObject.model_validate(doc)
            except ValidationError:
                continue  # fragments of KEDA's docs; the CRD need not reject all of them
            validator.validate(doc)
            checked += 1
    assert checked >= 10


# --- CEL rules say what the model validators say ------------------------------------------------

_SO = {
    "apiVersion": "ebbflow.io/v1alpha1",
    "kind": "ScaledObject",
    "metadata": {"name": "so"},
}
_KAFKA = {"type": "kafka", "metadata": {"bootstrapServers": "k:9092", "consumerGroup": "g"}}
_CPU = {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}

# (spec, whether pydantic accepts it): every rule must agree with the model on each
SO_SPECS: list[dict[str, Any]] = [
    {"triggers": [_KAFKA]},
    {"minReplicaCount": 5, "maxReplicaCount": 2, "triggers": [_KAFKA]},
    {"minReplicaCount": 2, "idleReplicaCount": 0, "triggers": [_KAFKA]},
    {"minReplicaCount": 2, "idleReplicaCount": 2, "triggers": [_KAFKA]},
    {"triggers": [_CPU]},
    {"minReplicaCount": 1, "triggers": [_CPU]},
    {"minReplicaCount": 1, "fallback": {"failureThreshold": 3, "replicas": 2}, "triggers": [_CPU]},
    {"fallback": {"failureThreshold": 3, "replicas": 2}, "triggers": [_KAFKA]},
    {"minReplicaCount": 1, "triggers": [{**_CPU, "metricType": "Value"}]},
    {"triggers": [{**_KAFKA, "metricType": "Utilization"}]},
    {
        "advanced": {"scalingModifiers": {"formula": "a * 2", "target": "5"}},
        "triggers": [{**_KAFKA, "name": "a"}],
    },
    {"advanced": {"scalingModifiers": {"formula": "a * 2", "target": "5"}}, "triggers": [_KAFKA]},
]


def _with_defaults(node: dict[str, Any], value: Any) -> Any:
    """`value` with the schema's defaults filled in, as the API server does before CEL."""
    if isinstance(value, dict) and node.get("properties"):
        out = dict(value)
        for name, child in node["properties"].items():
            if name not in out and "default" in child:
                out[name] = child["default"]
            if name in out:
                out[name] = _with_defaults(child, out[name])
        return out
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [_with_defaults(node["items"], item) for item in value]
    return value


def _cel_errors(node: dict[str, Any], value: Any) -> list[str]:
    """Every CEL rule of `node` and below that fails on `value` (evaluated by cel-python)."""
    failed = []
    if isinstance(value, dict):
        for rule in node.get("x-kubernetes-validations", []):
            env = celpy.Environment()
            program = env.program(env.compile(rule["rule"]))
            if not program.evaluate({"self": celpy.json_to_cel(value)}):
                failed.append(rule["message"])
        for name, child in (node.get("properties") or {}).items():
            if name in value:
                failed += _cel_errors(child, value[name])
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for item in value:
            failed += _cel_errors(node["items"], item)
    return failed


@pytest.mark.parametrize("spec", SO_SPECS)
def test_cel_rules_agree_with_the_model(spec: dict[str, Any]) -> None:
    entry = next(k for k in CRD_KINDS if k.kind == "ScaledObject")
    from ebbflow.crds import openapi_schema

    schema = openapi_schema(entry)["properties"]["spec"]
    try:
        ScaledObject.model_validate({**_SO, "spec": {"scaleTargetRef": {"name": "w"}, **spec}})
        accepted = True
    except ValidationError:
        accepted = False
    full = _with_defaults(schema, {"scaleTargetRef": {"name": "w"}, **spec})
    assert (_cel_errors(schema, full) == []) == accepted
