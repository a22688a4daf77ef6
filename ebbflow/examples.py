"""Examples bundled with ebbflow, found in a wheel (package data) or a source checkout."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
# a wheel carries examples/ as ebbflow/_examples; a checkout has it at the top level
_PLACES = (_HERE / "_examples", _HERE.parent / "examples")

DEFAULT_SCENARIO = "scenarios/http-nyc-taxi.yaml"


def bundled(name: str) -> Path:
    """The path of a bundled example file, e.g. `scenarios/http-nyc-taxi.yaml`."""
    for place in _PLACES:
        if (place / name).is_file():
            return place / name
    places = ", ".join(map(str, _PLACES))
    raise FileNotFoundError(f"bundled example {name!r} not found in {places}")
