"""KEDA-compatible CRD models: ScaledObject, ScaledJob, TriggerAuthentication.

Field for field as KEDA 2.x (`keda.sh/v1alpha1`), with KEDA's defaults, accepted under
our group `ebbflow.io/v1alpha1` too. Cross-field rules follow KEDA's admission webhook.

Trigger metadata is a map of strings here, as in the CRD. Its typed validation belongs to
the scalers: pass `context={"trigger_metadata": parse}` (see `scaler.manifests`) and each
trigger's metadata is checked in the same pass, errors carrying their full field path.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from scaler.formula import Formula, FormulaError
from scaler.predictive_spec import PREDICTIVE_ANNOTATION, PredictiveSpec, annotation_flag
from scalers.base import MetricType, field_error

KEDA_GROUP = "keda.sh"
EBBFLOW_GROUP = "ebbflow.io"
API_VERSIONS = (f"{KEDA_GROUP}/v1alpha1", f"{EBBFLOW_GROUP}/v1alpha1")

PAUSED_ANNOTATION = "autoscaling.keda.sh/paused"
PAUSED_REPLICAS_ANNOTATION = "autoscaling.keda.sh/paused-replicas"

RESOURCE_TRIGGERS = frozenset({"cpu", "memory"})


class KubeModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are errors (typos)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class ObjectMeta(BaseModel):
    """The parts of Kubernetes ObjectMeta we use; the rest is kept as is."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True
    )

    name: str = Field(min_length=1)
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None


# --- ScaledObject -------------------------------------------------------------------------


class ScaleTargetRef(KubeModel):
    api_version: str = "apps/v1"
    kind: str = "Deployment"
    name: str = Field(min_length=1)
    env_source_container_name: str | None = None


class FallbackBehavior(StrEnum):
    STATIC = "static"
    CURRENT_REPLICAS = "currentReplicas"
    CURRENT_REPLICAS_IF_HIGHER = "currentReplicasIfHigher"
    CURRENT_REPLICAS_IF_LOWER = "currentReplicasIfLower"


class Fallback(KubeModel):
    failure_threshold: int = Field(ge=0)
    replicas: int = Field(ge=0)
    behavior: FallbackBehavior = FallbackBehavior.STATIC


class PolicyType(StrEnum):
    PODS = "Pods"
    PERCENT = "Percent"


class SelectPolicy(StrEnum):
    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


class ScalingPolicy(KubeModel):
    """autoscaling/v2 HPAScalingPolicy."""

    type: PolicyType
    value: int = Field(gt=0)
    period_seconds: int = Field(gt=0, le=1800)


class ScalingRules(KubeModel):
    """autoscaling/v2 HPAScalingRules; unset fields take Kubernetes' defaults in the engine."""

    stabilization_window_seconds: int | None = Field(default=None, ge=0, le=3600)
    select_policy: SelectPolicy | None = None
    policies: list[ScalingPolicy] | None = None
    # HPA 1.33+ (alpha): per-direction tolerance; None means the cluster default 0.1
    tolerance: float | None = Field(default=None, ge=0)


class Behavior(KubeModel):
    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None


class HorizontalPodAutoscalerConfig(KubeModel):
    name: str | None = None
    behavior: Behavior | None = None


class ScalingModifiers(KubeModel):
    formula: str = ""
    target: str = ""
    activation_target: str = ""
    metric_type: MetricType = MetricType.AVERAGE_VALUE

    @field_validator("target", "activation_target", mode="before")
    @classmethod
    def _numbers_as_strings(cls, value: Any) -> Any:
        # KEDA types these as strings; YAML authors often write bare numbers
        return (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )

    @field_validator("metric_type")
    @classmethod
    def _external_types_only(cls, value: MetricType) -> MetricType:
        if value is MetricType.UTILIZATION:
            raise ValueError("must be AverageValue or Value")
        return value

    def target_value(self) -> float:
        return float(self.target)

    def activation_target_value(self) -> float:
        return float(self.activation_target) if self.activation_target else 0.0


class Advanced(KubeModel):
    restore_to_original_replica_count: bool = False
    horizontal_pod_autoscaler_config: HorizontalPodAutoscalerConfig | None = None
    scaling_modifiers: ScalingModifiers | None = None


class AuthenticationRef(KubeModel):
    name: str = Field(min_length=1)
    kind: Literal["TriggerAuthentication", "ClusterTriggerAuthentication"] = "TriggerAuthentication"


class Trigger(KubeModel):
    type: str = Field(min_length=1)
    name: str | None = None
    # metricType before metadata: fields validate in order, and metadata rules may need it
    metric_type: MetricType | None = None
    metadata: dict[str, Any] = Field(default_factory=dict, validate_default=True)
    authentication_ref: AuthenticationRef | None = None
    use_cached_metrics: bool = False

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str, info: ValidationInfo) -> str:
        known = (info.context or {}).get("trigger_types")
        if known is not None and value not in known:
            raise ValueError(f"unknown trigger type {value!r}; known: {', '.join(sorted(known))}")
        return value

    @field_validator("metadata", mode="wrap")
    @classmethod
    def _typed_metadata(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        raw = handler(value)
        parse = (info.context or {}).get("trigger_metadata")
        trigger_type = info.data.get("type")
        if parse is not None and trigger_type in (info.context or {}).get("trigger_types", ()):
            # raises a ValidationError, which pydantic nests under .metadata
            parse(trigger_type, raw, info.data.get("metric_type"))
        return raw

    @property
    def is_resource(self) -> bool:
        return self.type in RESOURCE_TRIGGERS

    @model_validator(mode="after")
    def _metric_type_fits(self) -> Trigger:
        if self.is_resource and self.metric_type is MetricType.VALUE:
            raise field_error(
                ("metricType",), f"{self.type} triggers take Utilization or AverageValue", "Value"
            )
        if not self.is_resource and self.metric_type is MetricType.UTILIZATION:
            raise field_error(
                ("metricType",), "Utilization is only for cpu and memory triggers", "Utilization"
            )
        return self


class ScaledObjectSpec(KubeModel):
    scale_target_ref: ScaleTargetRef
    polling_interval: int = Field(default=30, ge=1)
    cooldown_period: int = Field(default=300, ge=0)
    initial_cooldown_period: int = Field(default=0, ge=0)
    idle_replica_count: int | None = Field(default=None, ge=0)
    min_replica_count: int = Field(default=0, ge=0)
    max_replica_count: int = Field(default=100, ge=1)
    fallback: Fallback | None = None
    advanced: Advanced | None = None
    triggers: list[Trigger] = Field(min_length=1)
    predictive: PredictiveSpec | None = None  # ebbflow's: scaler/predictive_spec.py

    @model_validator(mode="after")
    def _keda_cross_field_rules(self) -> ScaledObjectSpec:
        if self.min_replica_count > self.max_replica_count:
            raise field_error(
                ("minReplicaCount",),
                f"must not exceed maxReplicaCount ({self.max_replica_count})",
                self.min_replica_count,
            )
        idle = self.idle_replica_count
        if idle is not None and idle >= self.min_replica_count:
            raise field_error(
                ("idleReplicaCount",),
                f"must be less than minReplicaCount ({self.min_replica_count})",
                idle,
            )
        seen: set[str] = set()
        for i, trigger in enumerate(self.triggers):
            if trigger.name and trigger.name in seen:
                raise field_error(
                    ("triggers", i, "name"), "duplicates another trigger's name", trigger.name
                )
            seen.add(trigger.name or "")
        external = [t for t in self.triggers if not t.is_resource]
        if not external and self.min_replica_count == 0:
            raise field_error(
                ("minReplicaCount",),
                "must be at least 1 when all triggers are cpu/memory "
                "(resource metrics cannot wake a workload from zero)",
                self.min_replica_count,
            )
        self._check_modifiers()
        self._check_fallback(external)
        wanted = self.predictive.trigger if self.predictive else None
        names = [t.name or str(i) for i, t in enumerate(self.triggers)]
        if wanted is not None and wanted not in names:
            raise field_error(("predictive", "trigger"), "no trigger by that name", wanted)
        return self

    def _check_modifiers(self) -> None:
        modifiers = self.scaling_modifiers
        if modifiers is None:
            return
        where = ("advanced", "scalingModifiers")
        if not modifiers.formula.strip():
            raise field_error((*where, "formula"), "required with scalingModifiers", "")
        if not modifiers.target:
            raise field_error((*where, "target"), "required with scalingModifiers", "")
        for field, text in (
            ("target", modifiers.target),
            ("activationTarget", modifiers.activation_target),
        ):
            if not text:
                continue
            try:
                number = float(text)
            except ValueError:
                raise field_error((*where, field), "must be a number", text) from None
            if field == "target" and number <= 0:
                raise field_error((*where, field), "must be a positive number", text)
        for i, trigger in enumerate(self.triggers):
            if not trigger.name:
                raise field_error(
                    ("triggers", i, "name"),
                    "required with scalingModifiers (the formula names its triggers)",
                    None,
                )
        try:
            Formula.compile(modifiers.formula, [t.name or "" for t in self.triggers])
        except FormulaError as exc:
            raise field_error((*where, "formula"), str(exc), modifiers.formula) from None

    def _check_fallback(self, external: list[Trigger]) -> None:
        if self.fallback is None:
            return
        if not external:
            raise field_error(("fallback",), "not supported when all triggers are cpu/memory", None)
        modifiers = self.scaling_modifiers
        if modifiers is not None:
            if modifiers.metric_type is not MetricType.AVERAGE_VALUE:
                raise field_error(
                    ("advanced", "scalingModifiers", "metricType"),
                    "must be AverageValue when fallback is set",
                    modifiers.metric_type.value,
                )
            return
        # KEDA: valid when at least one non-cpu/memory trigger uses AverageValue
        if not any(t.metric_type in (None, MetricType.AVERAGE_VALUE) for t in external):
            raise field_error(
                ("fallback",),
                "needs at least one trigger (other than cpu/memory) with metricType AverageValue",
                None,
            )

    @property
    def scaling_modifiers(self) -> ScalingModifiers | None:
        return self.advanced.scaling_modifiers if self.advanced else None

    @property
    def behavior(self) -> Behavior | None:
        config = self.advanced.horizontal_pod_autoscaler_config if self.advanced else None
        return config.behavior if config else None


class TriggerHealth(KubeModel):
    number_of_failures: int = 0
    status: Literal["Happy", "Failing"] = "Happy"


class ScaledObject(KubeModel):
    api_version: Literal["keda.sh/v1alpha1", "ebbflow.io/v1alpha1"]
    kind: Literal["ScaledObject"]
    metadata: ObjectMeta
    spec: ScaledObjectSpec
    status: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _paused_annotations(self) -> ScaledObject:
        annotations = self.metadata.annotations
        value = annotations.get(PAUSED_REPLICAS_ANNOTATION)
        if value is not None and not value.strip().isdigit():
            raise field_error(
                ("metadata", "annotations", PAUSED_REPLICAS_ANNOTATION),
                "must be an integer >= 0",
                value,
            )
        flag = annotations.get(PAUSED_ANNOTATION)
        if flag is not None and flag.strip().lower() not in {"true", "false"}:
            raise field_error(
                ("metadata", "annotations", PAUSED_ANNOTATION), "must be true or false", flag
            )
        try:
            annotation_flag(annotations)
        except ValueError as exc:
            raise field_error(
                ("metadata", "annotations", PREDICTIVE_ANNOTATION),
                str(exc),
                annotations[PREDICTIVE_ANNOTATION],
            ) from None
        return self

    @property
    def predictive(self) -> PredictiveSpec | None:
        """The predictive policy in force: spec.predictive when enabled, else the defaults when
        the ebbflow.io/predictive annotation is "true"; None for a purely reactive object."""
        spec = self.spec.predictive
        if spec is not None:
            return spec if spec.enabled else None
        return PredictiveSpec() if annotation_flag(self.metadata.annotations) else None

    @property
    def paused_replicas(self) -> int | None:
        """The paused-replicas annotation: hold the target at exactly this count."""
        value = self.metadata.annotations.get(PAUSED_REPLICAS_ANNOTATION)
        return int(value) if value is not None else None

    @property
    def paused(self) -> bool:
        """The paused annotation: stop scaling, keep the current count."""
        return self.metadata.annotations.get(PAUSED_ANNOTATION, "").strip().lower() == "true"

    def trigger_names(self) -> list[str]:
        """Each trigger's name, or its index as a string for unnamed triggers."""
        return [t.name or str(i) for i, t in enumerate(self.spec.triggers)]


# --- ScaledJob ----------------------------------------------------------------------------


class JobTargetRef(KubeModel):
    """batch/v1 JobSpec, the fields KEDA reads; the pod template is kept as given."""

    model_config = ConfigDict(extra="allow")

    template: dict[str, Any]
    parallelism: int | None = Field(default=None, ge=0)
    completions: int | None = Field(default=None, ge=0)
    active_deadline_seconds: int | None = Field(default=None, ge=0)
    backoff_limit: int | None = Field(default=None, ge=0)


class Rollout(KubeModel):
    strategy: Literal["default", "gradual"] = "default"
    propagation_policy: Literal["background", "foreground"] = "background"


class ScalingStrategy(KubeModel):
    strategy: Literal["default", "custom", "accurate", "eager"] = "default"
    custom_scaling_queue_length_deduction: int | None = None
    custom_scaling_running_job_percentage: str | None = None
    pending_pod_conditions: list[str] = Field(default_factory=list)
    multiple_scalers_calculation: Literal["max", "min", "avg", "sum"] = "max"

    @model_validator(mode="after")
    def _custom_needs_parameters(self) -> ScalingStrategy:
        if self.strategy == "custom" and self.custom_scaling_running_job_percentage is not None:
            try:
                float(self.custom_scaling_running_job_percentage)
            except ValueError:
                raise field_error(
                    ("customScalingRunningJobPercentage",),
                    "must be a number",
                    self.custom_scaling_running_job_percentage,
                ) from None
        return self


class ScaledJobSpec(KubeModel):
    job_target_ref: JobTargetRef
    polling_interval: int = Field(default=30, ge=1)
    successful_jobs_history_limit: int = Field(default=100, ge=0)
    failed_jobs_history_limit: int = Field(default=100, ge=0)
    env_source_container_name: str | None = None
    min_replica_count: int = Field(default=0, ge=0)
    max_replica_count: int = Field(default=100, ge=0)
    rollout: Rollout | None = None
    rollout_strategy: Literal["default", "gradual"] | None = None
    scaling_strategy: ScalingStrategy | None = None
    triggers: list[Trigger] = Field(min_length=1)

    @model_validator(mode="after")
    def _bounds(self) -> ScaledJobSpec:
        if self.min_replica_count > self.max_replica_count:
            raise field_error(
                ("minReplicaCount",),
                f"must not exceed maxReplicaCount ({self.max_replica_count})",
                self.min_replica_count,
            )
        return self


class ScaledJob(KubeModel):
    api_version: Literal["keda.sh/v1alpha1", "ebbflow.io/v1alpha1"]
    kind: Literal["ScaledJob"]
    metadata: ObjectMeta
    spec: ScaledJobSpec
    status: dict[str, Any] | None = None


# --- TriggerAuthentication ----------------------------------------------------------------


class SecretTargetRef(KubeModel):
    parameter: str = Field(min_length=1)
    name: str = Field(min_length=1)
    key: str = Field(min_length=1)


class ConfigMapTargetRef(SecretTargetRef):
    pass


class EnvRef(KubeModel):
    parameter: str = Field(min_length=1)
    name: str = Field(min_length=1)
    container_name: str | None = None


class PodIdentity(KubeModel):
    provider: Literal["none", "azure-workload", "aws", "aws-eks", "gcp"]
    identity_id: str | None = None
    identity_tenant_id: str | None = None
    identity_authority_host: str | None = None
    role_arn: str | None = None
    identity_owner: Literal["keda", "workload"] | None = None


class TriggerAuthenticationSpec(KubeModel):
    secret_target_ref: list[SecretTargetRef] = Field(default_factory=list)
    config_map_target_ref: list[ConfigMapTargetRef] = Field(default_factory=list)
    env: list[EnvRef] = Field(default_factory=list)
    pod_identity: PodIdentity | None = None
    # secret stores: kept as given; their resolvers come with the providers
    hashi_corp_vault: dict[str, Any] | None = None
    azure_key_vault: dict[str, Any] | None = None
    aws_secret_manager: dict[str, Any] | None = None
    gcp_secret_manager: dict[str, Any] | None = None
    bound_service_account_token: list[dict[str, Any]] | None = None


class TriggerAuthentication(KubeModel):
    api_version: Literal["keda.sh/v1alpha1", "ebbflow.io/v1alpha1"]
    kind: Literal["TriggerAuthentication"]
    metadata: ObjectMeta
    spec: TriggerAuthenticationSpec


class ClusterTriggerAuthentication(KubeModel):
    api_version: Literal["keda.sh/v1alpha1", "ebbflow.io/v1alpha1"]
    kind: Literal["ClusterTriggerAuthentication"]
    metadata: ObjectMeta
    spec: TriggerAuthenticationSpec


MODELS: dict[str, type[KubeModel]] = {
    "ScaledObject": ScaledObject,
    "ScaledJob": ScaledJob,
    "TriggerAuthentication": TriggerAuthentication,
    "ClusterTriggerAuthentication": ClusterTriggerAuthentication,
}
