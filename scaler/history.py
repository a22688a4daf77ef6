"""History for the predictor in the operator: Prometheus range queries.

prometheus-api-client is a synchronous (requests) client: every query runs in a worker thread
(the `FitExecutor` the predictor fits with), never on the event loop, with a timeout.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
from prometheus_api_client import PrometheusConnect

from forecasting.errors import SeriesError
from forecasting.series import Series
from scaler.api import ScaledObject
from scaler.clock import Clock
from scaler.predictive import (
    FitExecutor,
    PredictiveConfigError,
    Predictor,
    ThreadExecutor,
    predictor_config,
)

MAX_POINTS = 10_000  # Prometheus refuses range queries of more than 11,000 points per series
TIMEOUT_SECONDS = 30.0


class PrometheusHistory:
    """A HistorySource over one PromQL query that returns a single series (aggregate with
    `sum(...)`). Sample k of the range query at t_k summarises the window ending at t_k (a
    `rate(...[1m])`), so the Series puts its step at [t_k - step, t_k)."""

    def __init__(
        self,
        url: str,
        query: str,
        executor: FitExecutor | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.url = url
        self.query = query
        self._executor: FitExecutor = executor or ThreadExecutor()
        self._client = PrometheusConnect(url=url, disable_ssl=False, timeout=math.ceil(timeout))

    async def fetch(self, start: float, end: float, step: float) -> Series:
        first = math.ceil(start / step) * step
        last = math.floor(end / step) * step
        if last <= first:
            raise SeriesError(f"{self.url}: no {step:g}s step between {start:g} and {end:g}")
        count = round((last - first) / step) + 1
        values = np.full(count, np.nan)
        begin = 0
        while begin < count:  # chunks under the server's points limit
            stop = min(begin + MAX_POINTS, count)
            result = await self._executor(
                functools.partial(
                    self._client.custom_query_range,
                    self.query,
                    start_time=datetime.fromtimestamp(first + begin * step, UTC),
                    end_time=datetime.fromtimestamp(first + (stop - 1) * step, UTC),
                    step=f"{step:g}s",
                )
            )
            self._place(result, values, first, step)
            begin = stop
        known = np.flatnonzero(np.isfinite(values))
        if known.size < 2:
            raise SeriesError(f"{self.url}: {self.query!r} has no history in the lookback window")
        # gaps (a missed scrape, a restart) are bridged linearly; nothing is made up at the ends
        kept = values[known[0] : known[-1] + 1]
        grid = np.arange(len(kept), dtype=np.float64)
        ok = np.isfinite(kept)
        filled = np.interp(grid, grid[ok], kept[ok])
        return Series(filled.astype(np.float64), step, first + (known[0] - 1) * step)

    def _place(self, result: Any, values: np.ndarray, first: float, step: float) -> None:
        if not isinstance(result, list):
            raise SeriesError(f"{self.url}: unexpected answer to {self.query!r}: {result!r:.200}")
        if len(result) > 1:
            raise SeriesError(
                f"{self.url}: {self.query!r} returned {len(result)} series; "
                "aggregate it to one (sum(...))"
            )
        for stamp, text in result[0]["values"] if result else []:
            value = float(text)
            index = round((float(stamp) - first) / step)
            if 0 <= index < len(values) and math.isfinite(value):
                values[index] = value


class PrometheusPredictors:
    """The PredictorFactory of the operator: history from Prometheus (spec.predictive's query
    and serverAddress, else the forecast trigger's own), fits in a worker thread."""

    def __init__(
        self,
        clock: Clock,
        pod_startup: float,
        node_launch: float = 0.0,
        executor: FitExecutor | None = None,
    ) -> None:
        self.clock = clock
        self.pod_startup = pod_startup
        self.node_launch = node_launch
        self.executor: FitExecutor = executor or ThreadExecutor()

    async def __call__(self, so: ScaledObject) -> Predictor:
        spec = so.predictive
        if spec is None:
            raise PredictiveConfigError("spec.predictive: not enabled")
        names = so.trigger_names()
        trigger_name = spec.trigger or names[0]
        trigger = so.spec.triggers[names.index(trigger_name)]
        query = spec.query or trigger.metadata.get("query")
        server = spec.server_address or trigger.metadata.get("serverAddress")
        if not query or not server:
            field = "query" if not query else "serverAddress"
            raise PredictiveConfigError(
                f"spec.predictive.{field}: required: trigger {trigger_name!r} "
                f"({trigger.type}) has no Prometheus {field} to read history from"
            )
        config = predictor_config(so, self.pod_startup, self.node_launch)
        history = PrometheusHistory(str(server), str(query), self.executor)
        name = f"{so.metadata.namespace}/{so.metadata.name}"
        return Predictor(name, config, history, self.clock, self.executor)
