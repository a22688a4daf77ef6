"""Churn figures from the removal record: replacement lifetimes, flaps and shape returns."""

from provisioner.disruption.churn import Removal, churn

SINGLE = "single-node-consolidation"
MULTI = "multi-node-consolidation"


def removal(node, itype, at, created, method=SINGLE, by=(), types=(), together=1):
    return Removal(at, node, "web", itype, "spot", method, created, by, types, together)


def test_a_one_for_one_replacement_back_to_the_old_shape_is_a_flap() -> None:
    record = [
        removal("a", "m6i.xlarge", at=100, created=0, by=("b",), types=("c6i.xlarge",)),
        removal("b", "c6i.xlarge", at=500, created=110, by=("c",), types=("m6i.xlarge",)),
    ]
    figures = churn(record, {"web": 75.0})
    assert (figures.flaps, figures.shape_returns, figures.replaced_too_soon) == (1, 0, 0)
    assert figures.min_replacement_lifetime == 390
    assert figures.replacements == 2


def test_a_merge_into_the_old_shape_is_a_shape_return_not_a_flap() -> None:
    record = [
        removal("a", "m6i.xlarge", 100, 0, MULTI, ("b",), ("c6i.xlarge",), together=2),
        removal("x", "m6i.xlarge", 100, 0, MULTI, ("b",), ("c6i.xlarge",), together=2),
        removal("b", "c6i.xlarge", 400, 110, MULTI, ("c",), ("m6i.xlarge",), together=2),
    ]
    figures = churn(record, {"web": 75.0})
    assert (figures.flaps, figures.shape_returns) == (0, 1)


def test_a_replacement_removed_inside_the_bound_is_counted() -> None:
    record = [
        removal("a", "m6i.xlarge", at=100, created=0, by=("b",), types=("c6i.large",)),
        removal("b", "c6i.large", at=150, created=110, method="emptiness"),
        removal("c", "c6i.large", at=150, created=0, method="interruption"),
    ]
    figures = churn(record, {"web": 75.0})
    assert figures.replaced_too_soon == 1
    assert figures.min_replacement_lifetime == 40
    assert figures.removals == 3


def test_a_merge_then_a_one_for_one_return_is_a_shape_return() -> None:
    record = [
        removal("a", "m6i.xlarge", 100, 0, MULTI, ("b",), ("c6i.2xlarge",), together=2),
        removal("x", "m6i.large", 100, 0, MULTI, ("b",), ("c6i.2xlarge",), together=2),
        removal("b", "c6i.2xlarge", 400, 110, SINGLE, ("c",), ("m6i.xlarge",)),
    ]
    figures = churn(record, {"web": 75.0})
    assert (figures.flaps, figures.shape_returns) == (0, 1)
