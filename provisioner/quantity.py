"""Kubernetes resource quantities: `500m`, `1.5`, `2Gi`, `128M`, `1e3`, parsed exactly.

Follows apimachinery's `resource.Quantity` grammar: a signed decimal number, then a binary
suffix (Ki Mi Gi Ti Pi Ei), a decimal suffix (n u m k M G T P E) or a decimal exponent
(`e3`, `E-2`). Numbers from YAML (int, float) are accepted as they are.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

_BINARY = {
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "Pi": 1024**5,
    "Ei": 1024**6,
}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|[eE](?P<exponent>[+-]?\d+)|(?P<decimal>[numkMGTPE]?))$"
)

Number = str | int | float | Decimal


def parse_quantity(value: Number) -> Decimal:
    """The exact value of a quantity (`"2Gi"` -> 2147483648, `"250m"` -> 0.25).

    Raises ValueError naming the bad text and the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid quantity {value!r}: must be a number or a string like 500m, 2Gi")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"invalid quantity {value}: must be finite")
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"invalid quantity {value!r}: must be finite")
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise ValueError(f"invalid quantity {value!r}: must be a number or a string like 500m, 2Gi")
    text = value.strip()
    match = _QUANTITY.match(text)
    if match is None:
        raise ValueError(
            f"invalid quantity {value!r}: expected a number with an optional suffix "
            "(Ki, Mi, Gi, Ti, Pi, Ei, m, k, M, G, T, P, E) or exponent (1e3)"
        )
    try:
        number = Decimal(match["number"])
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"invalid quantity {value!r}") from None
    if match["binary"]:
        return number * _BINARY[match["binary"]]
    if match["exponent"] is not None:
        return number.scaleb(int(match["exponent"]))
    return number * _DECIMAL[match["decimal"] or ""]


def _non_negative(value: Number, what: str) -> Decimal:
    quantity = parse_quantity(value)
    if quantity < 0:
        raise ValueError(f"invalid {what} {value!r}: must not be negative")
    return quantity


def _ceil(value: Decimal) -> int:
    # Kubernetes rounds a quantity up to the unit it is read in (Quantity.MilliValue/Value)
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def cpu_millicores(value: Number) -> int:
    """CPU in millicores: `"500m"` -> 500, `2` -> 2000, `"1.5"` -> 1500 (rounded up)."""
    return _ceil(_non_negative(value, "cpu quantity") * 1000)


def memory_bytes(value: Number) -> int:
    """Memory in bytes: `"2Gi"` -> 2147483648, `"128M"` -> 128000000 (rounded up)."""
    return _ceil(_non_negative(value, "memory quantity"))


def count(value: Number) -> int:
    """A whole count such as `nvidia.com/gpu` or `pods`: `"4"` -> 4; fractions are errors."""
    quantity = _non_negative(value, "count")
    if quantity != quantity.to_integral_value():
        raise ValueError(f"invalid count {value!r}: must be a whole number")
    return int(quantity)
