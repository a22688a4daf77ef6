"""The operator's configuration: one pydantic settings model (EBBFLOW_* env vars, CLI flags)."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_identity() -> str:
    # in a pod, the pod name (Downward API) is unique; else the host name and pid
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


class OperatorSettings(BaseSettings):
    """Every knob of `ebbflow operator`; each is also an `EBBFLOW_<NAME>` environment variable."""

    model_config = SettingsConfigDict(env_prefix="EBBFLOW_", extra="forbid")

    watch_namespace: str | None = Field(
        default=None, description="Namespace to watch; unset watches all namespaces."
    )
    lease_namespace: str = Field(
        default="ebbflow", description="Namespace of the leader-election Leases."
    )
    identity: str = Field(
        default_factory=_default_identity, description="This replica's name in the Leases."
    )
    shards: int = Field(default=1, ge=1, description="Lease-backed shards of ScaledObjects.")
    replicas: int = Field(default=1, ge=1, description="Operator replicas sharing the shards.")
    ordinal: int = Field(
        default=0, ge=0, description="This replica's index (StatefulSet ordinal) for shards."
    )
    lease_duration: float = Field(default=15.0, gt=0, description="Seconds a Lease is held.")
    renew_deadline: float = Field(
        default=10.0, gt=0, description="Seconds to renew before stepping down."
    )
    retry_period: float = Field(default=2.0, gt=0, description="Seconds between Lease attempts.")
    metrics_host: str = Field(default="0.0.0.0", description="Address of /metrics, /healthz.")
    metrics_port: int = Field(default=8080, ge=0, le=65535, description="Port of /metrics.")
    read_timeout: float = Field(default=3.0, gt=0, description="Seconds per metric read.")
    interceptor_urls: str = Field(
        default="",
        description="Comma-separated admin URLs of the HTTP interceptors (/queue is read from "
        "each and summed); when set, HTTPScaledObjects are driven and POST "
        "/interceptor/activate is served on the metrics port.",
    )
    circuit_open_seconds: float = Field(
        default=30.0, ge=0, description="Seconds a failed source is not retried."
    )
    cluster_auth_namespace: str = Field(
        default="ebbflow", description="Where ClusterTriggerAuthentication Secrets live."
    )
    predictive_pod_startup: float = Field(
        default=30.0,
        ge=0,
        description="Seconds a pod takes to become ready; part of spec.predictive's default "
        "leadTime.",
    )
    predictive_node_launch: float = Field(
        default=0.0,
        ge=0,
        description="Seconds a new node takes to join; part of spec.predictive's default leadTime.",
    )
    log_format: Literal["json", "text"] = Field(default="json", description="Log line format.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _timing(self) -> OperatorSettings:
        if not self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("need retryPeriod < renewDeadline < leaseDuration")
        if self.ordinal >= self.replicas:
            raise ValueError(f"ordinal ({self.ordinal}) must be below replicas ({self.replicas})")
        for url in self.interceptor_admin_urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"interceptorUrls: {url!r} must start with http:// or https://")
        return self

    @property
    def interceptor_admin_urls(self) -> list[str]:
        """`interceptor_urls` as a list (empty: no interceptor, HTTPScaledObjects not driven)."""
        return [u.strip() for u in self.interceptor_urls.split(",") if u.strip()]
