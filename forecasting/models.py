"""The registry of forecasting models by name; `make_model` builds one from a ModelSpec."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from forecasting.decomposition import Mstl, Stl
from forecasting.errors import ModelError
from forecasting.forecast import Model, ModelSpec
from forecasting.harmonic import SarimaxFourier
from forecasting.naive import SeasonalNaive
from forecasting.smoothing import HoltWinters
from forecasting.window import Windowed

BASELINE = "seasonal_naive"


def _windowed(build: Callable[[ModelSpec], Model]) -> Callable[[ModelSpec], Model]:
    return lambda spec: Windowed(build, spec)


MODELS: Mapping[str, Callable[[ModelSpec], Model]] = MappingProxyType(
    {
        # the baseline reads the last season only: nothing to bound
        BASELINE: SeasonalNaive,
        "holt_winters": _windowed(HoltWinters),
        "stl": _windowed(Stl),
        "mstl": _windowed(Mstl),
        "sarimax_fourier": _windowed(SarimaxFourier),
    }
)


def make_model(name: str, spec: ModelSpec) -> Model:
    """The model registered as `name`, built for `spec`."""
    try:
        build = MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None
    return build(spec)
