"""Kubernetes quantities: every suffix form, rounding up like Quantity.MilliValue, clear errors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from provisioner.quantity import count, cpu_millicores, memory_bytes, parse_quantity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2Gi", Decimal(2 * 1024**3)),
        ("1Ki", Decimal(1024)),
        ("3Mi", Decimal(3 * 1024**2)),
        ("1Ti", Decimal(1024**4)),
        ("500m", Decimal("0.5")),
        ("128M", Decimal(128_000_000)),
        ("2k", Decimal(2000)),
        ("1G", Decimal(10**9)),
        ("1T", Decimal(10**12)),
        ("1e3", Decimal(1000)),
        ("1.5E-3", Decimal("0.0015")),
        ("1E", Decimal(10**18)),  # bare E is the exa suffix, not an exponent
        (".5Ki", Decimal(512)),
        ("+4", Decimal(4)),
        (7, Decimal(7)),
        (0.25, Decimal("0.25")),
    ],
)
def test_parse_quantity_reads_every_suffix(text: str | int | float, expected: Decimal) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    ("value", "millicores"),
    [("500m", 500), (2, 2000), ("1.5", 1500), ("0.1", 100), ("1m", 1), ("0.0001", 1), (1.25, 1250)],
)
def test_cpu_millicores_rounds_up_like_kubernetes(value: str | float, millicores: int) -> None:
    assert cpu_millicores(value) == millicores


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2Gi", 2147483648), ("128M", 128_000_000), ("100Mi", 104857600), (1024, 1024), ("1.5", 2)],
)
def test_memory_bytes(value: str | int, expected: int) -> None:
    assert memory_bytes(value) == expected


def test_count_accepts_whole_numbers_only() -> None:
    assert count("4") == 4
    assert count(8) == 8
    with pytest.raises(ValueError, match="must be a whole number"):
        count("1.5")


@pytest.mark.parametrize("bad", ["abc", "1.5x", "", "Gi", "1..2", "1e", "5 Gi", "1Gib"])
def test_bad_quantities_name_the_text_and_the_forms(bad: str) -> None:
    with pytest.raises(ValueError, match=f"invalid quantity {bad!r}: expected a number"):
        parse_quantity(bad)


@pytest.mark.parametrize("bad", [True, None, [1], float("nan"), float("inf")])
def test_non_numbers_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="invalid quantity"):
        parse_quantity(bad)  # type: ignore[arg-type]


def test_negative_resources_are_rejected() -> None:
    assert parse_quantity("-1") == -1  # a quantity may be negative in general
    with pytest.raises(ValueError, match="must not be negative"):
        cpu_millicores("-500m")
    with pytest.raises(ValueError, match="must not be negative"):
        memory_bytes(-1)
