"""Redis list length or key value (KEDA `redis` trigger). Metadata only; reading comes later.

Exactly one of `listName` (target `listLength`) and `keyName` (a number stored at the key,
target `keyValue`) is set, as KEDA's docs require.

The server is `address` (`host:port`, comma-separated for several) or `host` plus `port`,
each also readable from the workload's environment (`...FromEnv`) or a TriggerAuthentication,
so none of them is required here.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from scalers.base import (
    Boolean,
    MetricSpec,
    MetricType,
    NonNegativeInteger,
    NonNegativeNumber,
    PositiveInteger,
    PositiveNumber,
    TriggerContext,
    TriggerMetadata,
    field_error,
)
from scalers.registry import register


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",")] if text.strip() else []


def _is_port(text: str) -> bool:
    return text.isdigit() and 0 < int(text) < 65536


@register
class RedisMetadata(TriggerMetadata):
    """KEDA's redis (lists and keys) scaler metadata, with its names and defaults."""

    trigger_type = "redis"

    address: str = ""
    address_from_env: str = Field(default="", alias="addressFromEnv")
    host: str = ""
    host_from_env: str = Field(default="", alias="hostFromEnv")
    port: str = ""
    port_from_env: str = Field(default="", alias="portFromEnv")
    list_name: str = Field(default="", alias="listName")
    list_length: PositiveInteger = Field(default=5, alias="listLength")
    activation_list_length: NonNegativeInteger = Field(default=0, alias="activationListLength")
    key_name: str = Field(default="", alias="keyName")
    # KEDA's docs give no default for keyValue; listLength's is used
    key_value: PositiveNumber = Field(default=5.0, alias="keyValue")
    activation_value: NonNegativeNumber = Field(default=0.0, alias="activationValue")
    database_index: NonNegativeInteger = Field(default=0, alias="databaseIndex")
    enable_tls: Boolean = Field(default=False, alias="enableTLS")
    unsafe_ssl: Boolean = Field(default=False, alias="unsafeSsl")
    # auth parameters: KEDA reads them from metadata too, but a TriggerAuthentication or
    # the *FromEnv names keep the secret out of the manifest
    username: str = ""
    password: str = ""
    username_from_env: str = Field(default="", alias="usernameFromEnv")
    password_from_env: str = Field(default="", alias="passwordFromEnv")

    @model_validator(mode="after")
    def _source_and_address(self) -> RedisMetadata:
        if not self.list_name.strip() and not self.key_name.strip():
            raise field_error(("listName",), "required (or keyName)", None)
        if self.list_name.strip() and self.key_name.strip():
            raise field_error(("keyName",), "cannot be set together with listName", self.key_name)
        for address in _items(self.address):
            if not _is_port(address.rpartition(":")[2]):
                raise field_error(("address",), "must be host:port, comma-separated", address)
        hosts, ports = _items(self.host), _items(self.port)
        for port in ports:
            if not _is_port(port):
                raise field_error(("port",), "must be a port number (1-65535)", port)
        # KEDA joins hosts and ports pairwise
        if hosts and ports and len(hosts) != len(ports):
            message = f"must list as many ports as host lists hosts ({len(hosts)})"
            raise field_error(("port",), message, self.port)
        return self

    def metric_spec(self, ctx: TriggerContext) -> MetricSpec:
        if self.key_name.strip():
            target, activation = self.key_value, self.activation_value
        else:
            target, activation = float(self.list_length), float(self.activation_list_length)
        return MetricSpec(
            name=self.metric_name(ctx, self.key_name.strip() or self.list_name.strip()),
            target=target,
            activation_target=activation,
            metric_type=ctx.metric_type or MetricType.AVERAGE_VALUE,
        )
