"""Pieces every scenario model shares: the base model and the duration parser."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from scaler.durations import parse_duration as parse_duration  # one parser for all


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
