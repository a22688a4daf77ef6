"""Manifests: KEDA's documented examples validate unchanged; bad ones fail with located messages.

`tests/manifests/keda/` holds the examples of KEDA's docs (scalers and concepts pages), each file
naming its page on the first line. The malformed table pins the exact `file:doc N: path: message`
of each mistake, so a reworded or misplaced error is a test failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from scaler.api import MODELS, PAUSED_REPLICAS_ANNOTATION
from scaler.manifests import LoadedDocument, load_documents
from scalers import registry

KEDA_EXAMPLES = Path(__file__).parent.parent / "manifests" / "keda"
KEDA_FILES = sorted(KEDA_EXAMPLES.glob("*.yaml"))

# Documented KEDA examples that ebbflow rejects, each for a reason KEDA shares or we chose.
KNOWN_DIVERGENCES: dict[str, list[str]] = {
    # KEDA's admission webhook rejects these too: only cpu/memory triggers and minReplicaCount
    # unset (0): "scaledobject has only cpu/memory triggers AND minReplica is 0"
    **{
        name: [
            "doc 1: spec.minReplicaCount: must be at least 1 when all triggers are cpu/memory "
            "(resource metrics cannot wake a workload from zero), got 0"
        ]
        for name in (
            "cpu-container.yaml",
            "cpu-utilization.yaml",
            "memory-container.yaml",
            "memory-utilization.yaml",
        )
    },
    # KEDA 1.x named an env var in `host`; KEDA 2.x reads it as the URL and fails the same way
    **{
        name: [
            "doc 1: spec.triggers[0].metadata.host: must be an amqp(s):// or http(s):// URL; "
            "name an env var with hostFromEnv"
        ]
        for name in ("authentication-scaledobject-env.yaml", "scaling-jobs-rabbitmq.yaml")
    },
    # expr's closures and array literals are outside our formula subset (scaler/formula.py)
    "scaling-deployments-count-function.yaml": [
        "doc 1: spec.advanced.scalingModifiers.formula: syntax error at column 7, "
        'got "count([trig_one,trig_two,trig_three],{#>1}) > 1 ? 5 : 0"'
    ],
}


def _errors(docs: list[LoadedDocument]) -> list[str]:
    return [
        f"doc {i.document}: {i.path}: {i.message}" if i.path else f"doc {i.document}: {i.message}"
        for d in docs
        for i in d.issues
        if i.severity == "error"
    ]


def _located(docs: list[LoadedDocument]) -> list[str]:
    return [str(i) for d in docs for i in d.issues if i.severity == "error"]


@pytest.mark.parametrize("path", KEDA_FILES, ids=lambda p: p.name)
def test_keda_example_validates_unchanged(path: Path) -> None:
    docs = list(load_documents(path))

    assert docs, f"{path.name} holds no document"
    assert _errors(docs) == KNOWN_DIVERGENCES.get(path.name, [])
    for doc in docs:
        if doc.ok:
            assert isinstance(doc.obj, MODELS[doc.kind or ""])


@pytest.mark.parametrize("path", KEDA_FILES, ids=lambda p: p.name)
def test_keda_example_names_its_doc_page(path: Path) -> None:
    first_line = path.read_text().splitlines()[0]

    assert first_line.startswith("# KEDA docs: ")
    assert "apiVersion: keda.sh/v1alpha1" in path.read_text()


def test_keda_examples_cover_every_kind() -> None:
    kinds = [d.kind for path in KEDA_FILES for d in load_documents(path)]

    assert len(kinds) >= 20
    assert set(kinds) == set(MODELS)


# --- malformed manifests ------------------------------------------------------------------


def trigger(type_: str, metadata: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {"type": type_, **fields, "metadata": metadata or {}}


def kafka(**metadata: Any) -> dict[str, Any]:
    return trigger("kafka", {"bootstrapServers": "kafka:9092", "consumerGroup": "g", **metadata})


def prometheus(**metadata: Any) -> dict[str, Any]:
    defaults = {"serverAddress": "http://prometheus:9090", "query": "up", "threshold": "5"}
    return trigger("prometheus", {**defaults, **metadata})


def cron(**metadata: Any) -> dict[str, Any]:
    defaults = {
        "timezone": "Asia/Kolkata",
        "start": "0 6 * * *",
        "end": "0 20 * * *",
        "desiredReplicas": "10",
    }
    return trigger("cron", {**defaults, **metadata})


def rabbitmq(**metadata: Any) -> dict[str, Any]:
    defaults = {
        "host": "http://guest:guest@rabbitmq:15672/",
        "queueName": "orders",
        "mode": "QueueLength",
        "value": "20",
    }
    return trigger("rabbitmq", {**defaults, **metadata})


def utilization(type_: str, **metadata: Any) -> dict[str, Any]:
    return trigger(type_, metadata, metricType="Utilization")


def redis(**metadata: Any) -> dict[str, Any]:
    return trigger("redis", {"address": "redis:6379", "listName": "jobs", **metadata})


def scaled_object(
    *triggers: dict[str, Any], annotations: dict[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "app"}
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"name": "app"},
            **spec,
            "triggers": list(triggers or [kafka()]),
        },
    }


def behavior(**rules: Any) -> dict[str, Any]:
    return {"horizontalPodAutoscalerConfig": {"behavior": rules}}


def modifiers(**fields: Any) -> dict[str, Any]:
    return {"scalingModifiers": fields}


CPU = utilization("cpu", value="60")
FALLBACK = {"failureThreshold": 3, "replicas": 6}
# reference/scaledjob-spec writes the paused annotation as a bare YAML boolean
SCALED_JOB_PAUSED_AS_BARE_BOOL = """\
apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata:
  name: job
  annotations:
    autoscaling.keda.sh/paused: true
spec:
  jobTargetRef:
    template: {}
  triggers:
  - type: redis
    metadata: {address: "redis:6379", listName: jobs}
"""
M = "spec.triggers[0].metadata"
POLICY = "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies[0]"

MALFORMED: list[Any] = [
    # trigger metadata, per type
    ("kafka-lag-word", scaled_object(kafka(lagThreshold="ten")),
     [f'{M}.lagThreshold: must be a positive number, got "ten"']),
    ("kafka-bool", scaled_object(kafka(allowIdleConsumers="yes")),
     [f'{M}.allowIdleConsumers: must be true or false, got "yes"']),
    ("kafka-missing-group", scaled_object(trigger("kafka", {"bootstrapServers": "kafka:9092"})),
     [f"{M}.consumerGroup: required"]),
    ("kafka-offset-policy", scaled_object(kafka(offsetResetPolicy="newest")),
     [f"{M}.offsetResetPolicy: must be one of 'latest', 'earliest', got \"newest\""]),
    ("prometheus-zero-threshold", scaled_object(prometheus(threshold="0")),
     [f'{M}.threshold: must be a positive number, got "0"']),
    ("prometheus-missing-query", scaled_object(trigger("prometheus", {
        "serverAddress": "http://prometheus:9090", "threshold": "5"})),
     [f"{M}.query: required"]),
    ("prometheus-bool", scaled_object(prometheus(ignoreNullValues="maybe")),
     [f'{M}.ignoreNullValues: must be true or false, got "maybe"']),
    ("prometheus-address-without-scheme", scaled_object(prometheus(serverAddress="prom:9090")),
     [f'{M}.serverAddress: must be an http:// or https:// URL, got "prom:9090"']),
    ("cpu-value-word", scaled_object(utilization("cpu", value="fifty"), minReplicaCount=1),
     [f'{M}.value: must be a positive quantity, e.g. 60, 500m or 512Mi, got "fifty"']),
    # KEDA parses Utilization with strconv.ParseInt: a percentage is a whole number
    ("cpu-utilization-fraction", scaled_object(utilization("cpu", value="60.5"),
                                               minReplicaCount=1),
     [f'{M}.value: must be a positive integer, got "60.5"']),
    ("memory-missing-value", scaled_object(utilization("memory"), minReplicaCount=1),
     [f"{M}.value: required"]),
    ("cron-desired-word", scaled_object(cron(desiredReplicas="ten")),
     [f'{M}.desiredReplicas: must be a positive integer, got "ten"']),
    ("cron-unknown-zone", scaled_object(cron(timezone="Mars/Olympus")),
     [f'{M}.timezone: unknown time zone, got "Mars/Olympus"']),
    ("cron-four-fields", scaled_object(cron(start="0 6 * *")), [
        f"{M}.start: must be a 5-field cron expression "
        '(minute hour day-of-month month day-of-week), got "0 6 * *"']),
    ("cron-start-equals-end", scaled_object(cron(end="0 6 * * *")),
     [f'{M}.end: must differ from start, got "0 6 * * *"']),
    ("rabbitmq-value-word", scaled_object(rabbitmq(value="lots")),
     [f'{M}.value: must be a positive number, got "lots"']),
    ("rabbitmq-missing-queue", scaled_object(trigger("rabbitmq", {"host": "amqp://mq:5672/"})),
     [f"{M}.queueName: required"]),
    ("rabbitmq-regex-bool", scaled_object(rabbitmq(useRegex="sure")),
     [f'{M}.useRegex: must be true or false, got "sure"']),
    ("rabbitmq-timeout-on-amqp", scaled_object(rabbitmq(host="amqp://mq:5672/", timeout="1000")),
     [f'{M}.timeout: needs protocol http, got "1000"']),
    ("rabbitmq-queue-length-and-mode", scaled_object(rabbitmq(queueLength="5")),
     [f'{M}.queueLength: is deprecated and cannot be combined with mode and value, got "5"']),
    ("redis-length-word", scaled_object(redis(listLength="ten")),
     [f'{M}.listLength: must be a positive integer, got "ten"']),
    ("redis-tls-bool", scaled_object(redis(enableTLS="yes")),
     [f'{M}.enableTLS: must be true or false, got "yes"']),
    ("redis-address-without-port", scaled_object(redis(address="redis")),
     [f'{M}.address: must be host:port, comma-separated, got "redis"']),
    # KEDA documents metadata as mandatory; a trigger without it is checked, not skipped
    ("trigger-without-metadata", scaled_object({"type": "kafka"}),
     [f"{M}.bootstrapServers: required", f"{M}.consumerGroup: required"]),
    ("unknown-trigger-type", scaled_object(trigger("kafkaa", {"topic": "orders"})), [
        "spec.triggers[0].type: unknown trigger type 'kafkaa'; "
        f"known: {', '.join(registry.known_types())}"]),
    # ScaledObject rules (KEDA's admission webhook)
    ("min-above-max", scaled_object(minReplicaCount=5, maxReplicaCount=3),
     ["spec.minReplicaCount: must not exceed maxReplicaCount (3), got 5"]),
    ("idle-not-below-min", scaled_object(idleReplicaCount=1, minReplicaCount=1),
     ["spec.idleReplicaCount: must be less than minReplicaCount (1), got 1"]),
    ("fallback-with-value-metric", scaled_object(kafka() | {"metricType": "Value"},
                                                 fallback=FALLBACK),
     ["spec.fallback: needs at least one trigger (other than cpu/memory) with metricType "
      "AverageValue"]),
    ("fallback-cpu-only", scaled_object(CPU, minReplicaCount=1, fallback=FALLBACK),
     ["spec.fallback: not supported when all triggers are cpu/memory"]),
    ("modifiers-without-target", scaled_object(
        kafka() | {"name": "lag"}, advanced=modifiers(formula="lag")),
     ["spec.advanced.scalingModifiers.target: required with scalingModifiers"]),
    ("modifiers-unnamed-trigger", scaled_object(
        kafka() | {"name": "lag"}, prometheus(), advanced=modifiers(formula="lag", target="5")),
     ["spec.triggers[1].name: required with scalingModifiers (the formula names its triggers)"]),
    ("modifiers-unknown-name", scaled_object(
        kafka() | {"name": "lag"}, prometheus() | {"name": "rps"},
        advanced=modifiers(formula="lag + latency", target="5")),
     ["spec.advanced.scalingModifiers.formula: unknown trigger name 'latency'; "
      'triggers are: lag, rps, got "lag + latency"']),
    ("cpu-only-from-zero", scaled_object(CPU, minReplicaCount=0), [
        "spec.minReplicaCount: must be at least 1 when all triggers are cpu/memory "
        "(resource metrics cannot wake a workload from zero), got 0"]),
    ("duplicate-trigger-names", scaled_object(kafka() | {"name": "lag"},
                                              prometheus() | {"name": "lag"}),
     ["spec.triggers[1].name: duplicates another trigger's name, got \"lag\""]),
    ("paused-replicas-word", scaled_object(annotations={PAUSED_REPLICAS_ANNOTATION: "two"}),
     [f'metadata.annotations[{PAUSED_REPLICAS_ANNOTATION}]: must be an integer >= 0, got "two"']),
    ("utilization-on-kafka", scaled_object(kafka() | {"metricType": "Utilization"}),
     ['spec.triggers[0].metricType: Utilization is only for cpu and memory triggers, '
      'got "Utilization"']),
    ("spec-field-typo", scaled_object(minReplicas=1), ["spec.minReplicas: unknown field"]),
    ("policy-period-zero", scaled_object(advanced=behavior(scaleDown={"policies": [
        {"type": "Pods", "value": 1, "periodSeconds": 0}]})),
     [f"{POLICY}.periodSeconds: must be > 0, got 0"]),
    ("policy-type-nodes", scaled_object(advanced=behavior(scaleDown={"policies": [
        {"type": "Nodes", "value": 1, "periodSeconds": 15}]})),
     [f"{POLICY}.type: must be one of 'Pods', 'Percent', got \"Nodes\""]),
    # reference/scaledobject-spec writes `tolerance` inside a policy; it belongs to the rules
    ("tolerance-inside-policy", scaled_object(advanced=behavior(scaleDown={"policies": [
        {"type": "Percent", "value": 100, "periodSeconds": 15, "tolerance": 0.1}]})),
     [f"{POLICY}.tolerance: unknown field"]),
    # documents that are not a ScaledObject of ours
    ("wrong-api-version", scaled_object() | {"apiVersion": "keda.sh/v1"},
     ['apiVersion: must be one of keda.sh/v1alpha1, ebbflow.io/v1alpha1, got "keda.sh/v1"']),
    ("unknown-kind", scaled_object() | {"kind": "ScaledObjekt"}, [
        "kind: unknown kind 'ScaledObjekt'; known: ClusterTriggerAuthentication, ScaledJob, "
        "ScaledObject, TriggerAuthentication"]),
    ("not-a-mapping", "- ScaledObject\n- app\n", ["must be a mapping (a Kubernetes object)"]),
    ("invalid-yaml", "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nspec: [unclosed\n",
     ["invalid YAML (line 4, column 1): expected ',' or ']', but got '<stream end>'"]),
    ("scaledjob-bare-bool-annotation", SCALED_JOB_PAUSED_AS_BARE_BOOL,
     ["metadata.annotations[autoscaling.keda.sh/paused]: must be a string, got true"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [pytest.param(manifest, expected, id=case) for case, manifest, expected in MALFORMED],
)
def test_malformed_manifest_names_file_document_and_field(
    tmp_path: Path, manifest: dict[str, Any] | str, expected: list[str]
) -> None:
    path = tmp_path / "so.yaml"
    path.write_text(manifest if isinstance(manifest, str) else yaml.safe_dump(manifest))

    docs = list(load_documents(path))

    assert _located(docs) == [f"{path}:doc 1: {message}" for message in expected]
    assert not any(d.ok for d in docs)


def test_malformed_table_covers_enough_cases() -> None:
    assert len(MALFORMED) >= 20


def test_fallback_needs_one_average_value_trigger_not_all(tmp_path: Path) -> None:
    # KEDA's CheckFallbackValid: valid when at least one non-cpu/memory trigger is AverageValue
    path = tmp_path / "so.yaml"
    manifest = scaled_object(prometheus() | {"metricType": "Value"}, kafka(), fallback=FALLBACK)
    path.write_text(yaml.safe_dump(manifest))

    assert _located(list(load_documents(path))) == []


# --- one bad document never stops the others ------------------------------------------------


def _multi_document(*documents: dict[str, Any] | str) -> str:
    return "---\n".join(d if isinstance(d, str) else yaml.safe_dump(d) for d in documents)


TRIGGER_AUTH = {
    "apiVersion": "keda.sh/v1alpha1",
    "kind": "TriggerAuthentication",
    "metadata": {"name": "kafka-auth"},
    "spec": {"secretTargetRef": [{"parameter": "password", "name": "kafka", "key": "password"}]},
}


def test_one_bad_document_leaves_the_others_valid(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    bad = scaled_object(kafka(lagThreshold="ten")) | {"metadata": {"name": "bad"}}
    path.write_text(_multi_document(scaled_object(cron()), bad, TRIGGER_AUTH, scaled_object()))

    docs = list(load_documents(path))

    assert [(d.document, d.kind, d.name, d.ok) for d in docs] == [
        (1, "ScaledObject", "app", True),
        (2, "ScaledObject", "bad", False),
        (3, "TriggerAuthentication", "kafka-auth", True),
        (4, "ScaledObject", "app", True),
    ]
    assert _located(docs) == [
        f"{path}:doc 2: spec.triggers[0].metadata.lagThreshold: "
        'must be a positive number, got "ten"'
    ]


def test_document_that_is_not_a_mapping_leaves_the_others_valid(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(_multi_document(scaled_object(), "just a string\n", TRIGGER_AUTH))

    docs = list(load_documents(path))

    assert [d.ok for d in docs] == [True, False, True]
    assert _located(docs) == [f"{path}:doc 2: must be a mapping (a Kubernetes object)"]


def test_trigger_without_metadata_leaves_the_others_valid(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(_multi_document(scaled_object({"type": "kafka"}), TRIGGER_AUTH))

    docs = list(load_documents(path))

    assert [d.ok for d in docs] == [False, True]


def test_yaml_syntax_error_is_reported_at_its_document(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    broken = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nspec: [unclosed\n"
    path.write_text(_multi_document(scaled_object(), TRIGGER_AUTH, broken))
    line = path.read_text().count("\n") + 1

    docs = list(load_documents(path))

    assert [d.ok for d in docs] == [True, True, False]
    assert _located(docs) == [
        f"{path}:doc 3: invalid YAML (line {line}, column 1): "
        "expected ',' or ']', but got '<stream end>'"
    ]
