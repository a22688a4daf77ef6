"""spec.predictive and the ebbflow.io/predictive annotation: defaults, and errors that name
the field."""

from __future__ import annotations

from typing import Any

import pytest

from forecasting.models import MODELS
from forecasting.refit import AUTO
from scaler.durations import parse_duration
from scaler.manifests import validate_document
from scaler.predictive_spec import ModelName, PredictiveSpec


def manifest(predictive: Any = None, annotations: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"name": "api"},
        "triggers": [
            {
                "type": "prometheus",
                "name": "rps",
                "metadata": {"serverAddress": "http://p:9090", "query": "x", "threshold": "8"},
            }
        ],
    }
    if predictive is not None:
        spec["predictive"] = predictive
    return {
        "apiVersion": "ebbflow.io/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "api", "annotations": annotations or {}},
        "spec": spec,
    }


def errors(raw: dict[str, Any]) -> list[str]:
    doc = validate_document(raw, "so.yaml", 1)
    return [f"{i.path}: {i.message}" for i in doc.issues if i.severity == "error"]


def test_every_registered_model_and_auto_can_be_named() -> None:
    assert set(ModelName.__args__) == {AUTO, *MODELS}  # type: ignore[attr-defined]


def test_durations_take_units_or_seconds() -> None:
    spec = PredictiveSpec.model_validate(
        {"lookback": "14d", "leadTime": 90, "refitInterval": "30m", "step": "1h"}
    )
    assert (spec.lookback, spec.lead_time, spec.refit_interval, spec.step) == (
        14 * 86400,
        90,
        1800,
        3600,
    )
    assert spec.max_age == 3600
    assert parse_duration("2d1h") == 2 * 86400 + 3600


def test_defaults() -> None:
    spec = PredictiveSpec()
    assert (spec.enabled, spec.model, spec.quantile, spec.lead_time) == (True, "auto", 0.9, None)
    assert (spec.lookback, spec.refit_interval, spec.step) == (7 * 86400, 3600, 300)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            manifest({"quantile": 1.5}),
            "spec.predictive.quantile: must be between 0.5 and 1 (exclusive), got 1.5",
        ),
        (manifest({"quantile": 0.4}), "spec.predictive.quantile: must be between 0.5 and 1"),
        (manifest({"model": "prophet"}), "spec.predictive.model: must be one of"),
        (manifest({"lookback": "a week"}), "spec.predictive.lookback: must be a duration"),
        (manifest({"refitInterval": 0}), "spec.predictive.refitInterval: must be > 0"),
        (manifest({"targetPerReplica": -1}), "spec.predictive.targetPerReplica: must be > 0"),
        (manifest({"trigger": "lag"}), "spec.predictive.trigger: no trigger by that name"),
        (manifest({"leadtime": "1m"}), "spec.predictive.leadtime: unknown field"),
        (
            manifest(annotations={"ebbflow.io/predictive": "yes"}),
            "metadata.annotations[ebbflow.io/predictive]: must be true or false",
        ),
    ],
)
def test_bad_predictive_settings_name_the_field(raw: dict[str, Any], expected: str) -> None:
    found = errors(raw)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found


def test_valid_predictive_manifests() -> None:
    assert errors(manifest({"model": "stl", "leadTime": "2m", "trigger": "rps"})) == []
    assert errors(manifest(annotations={"ebbflow.io/predictive": "true"})) == []
