import pytest

from provisioner.scheduling.model import Operator, Requirement
from provisioner.scheduling.requirements import (
    ReqSet,
    compatible,
    intersects,
    labels_satisfy,
    reqs_of,
)

IN, NOT_IN, EXISTS, DNE, GT, LT = (
    Operator.IN,
    Operator.NOT_IN,
    Operator.EXISTS,
    Operator.DOES_NOT_EXIST,
    Operator.GT,
    Operator.LT,
)


def rs(op: Operator, *values: str) -> ReqSet:
    return ReqSet.of(Requirement("k", op, values))


@pytest.mark.parametrize(
    ("a", "b", "has", "lacks"),
    [
        (rs(IN, "a", "b"), rs(IN, "b", "c"), ["b"], ["a", "c"]),
        (rs(IN, "a", "b"), rs(NOT_IN, "a"), ["b"], ["a"]),
        (rs(NOT_IN, "a"), rs(NOT_IN, "b"), ["c", "zzz"], ["a", "b"]),
        (rs(EXISTS), rs(IN, "x"), ["x"], ["y"]),
        (rs(GT, "4"), rs(LT, "9"), ["5", "8"], ["4", "9", "x"]),
        (rs(GT, "4"), rs(IN, "3", "6", "a"), ["6"], ["3", "a"]),
        (rs(GT, "4"), rs(NOT_IN, "6"), ["5", "7"], ["6", "2"]),
    ],
)
def test_intersection_keeps_exactly_the_common_values(
    a: ReqSet, b: ReqSet, has: list[str], lacks: list[str]
) -> None:
    both = a.intersection(b)
    assert both == b.intersection(a)
    assert all(both.has(v) for v in has)
    assert not any(both.has(v) for v in lacks)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (rs(IN, "a"), rs(IN, "b")),
        (rs(GT, "8"), rs(LT, "5")),
        (rs(GT, "4"), rs(LT, "5")),  # no integer strictly between
        (rs(IN, "a"), rs(DNE)),
        (rs(EXISTS), rs(DNE)),
    ],
)
def test_disjoint_requirements_intersect_to_nothing(a: ReqSet, b: ReqSet) -> None:
    assert a.intersection(b).empty


@pytest.mark.parametrize(
    ("req", "operator"),
    [
        (rs(IN, "a"), IN),
        (rs(NOT_IN, "a"), NOT_IN),
        (rs(EXISTS), EXISTS),
        (rs(DNE), DNE),
        (rs(GT, "3"), EXISTS),  # Karpenter reports bounded complements as Exists
    ],
)
def test_operator_reads_back_as_karpenter_does(req: ReqSet, operator: Operator) -> None:
    assert req.operator == operator


def test_gt_needs_an_integer() -> None:
    with pytest.raises(ValueError, match="integer"):
        rs(GT, "many")


def test_bounds_round_trip_to_requirements() -> None:
    both = rs(GT, "2").intersection(rs(LT, "10")).intersection(rs(NOT_IN, "5"))
    again = reqs_of(both.to_requirements())["k"]
    assert again == both
    assert "k Gt 2" in both.describe() and "k Lt 10" in both.describe()


def test_min_values_keeps_the_largest() -> None:
    a = ReqSet.of(Requirement("k", IN, ("a", "b", "c"), min_values=2))
    b = ReqSet.of(Requirement("k", IN, ("a", "b"), min_values=3))
    assert a.intersection(b).min_values == 3


def reqs(*items: tuple[str, Operator, tuple[str, ...]]) -> dict[str, ReqSet]:
    return reqs_of(Requirement(k, op, v) for k, op, v in items)


@pytest.mark.parametrize(
    ("template", "pod", "ok"),
    [
        # a well-known label the template does not define is allowed
        (reqs(), reqs(("kubernetes.io/arch", IN, ("arm64",))), True),
        (reqs(), reqs(("karpenter.k8s.aws/instance-family", IN, ("m5",))), True),
        # a custom label the template does not define: only NotIn / DoesNotExist
        (reqs(), reqs(("team", IN, ("a",))), False),
        (reqs(), reqs(("team", NOT_IN, ("a",))), True),
        (reqs(), reqs(("team", DNE, ())), True),
        # defined: the sets must meet
        (reqs(("team", IN, ("a", "b"))), reqs(("team", IN, ("b",))), True),
        (reqs(("team", IN, ("a",))), reqs(("team", IN, ("b",))), False),
        # both negative: compatible even with an empty intersection
        (reqs(("team", DNE, ())), reqs(("team", NOT_IN, ("a",))), True),
        (
            reqs(("kubernetes.io/arch", IN, ("amd64",))),
            reqs(("kubernetes.io/arch", IN, ("arm64",))),
            False,
        ),
    ],
)
def test_compatibility_follows_karpenter(template: dict, pod: dict, ok: bool) -> None:
    assert (compatible(template, pod) is None) is ok


def test_incompatibility_names_the_requirement() -> None:
    why = intersects(reqs(("team", IN, ("a",))), reqs(("team", IN, ("b",))))
    assert why is not None and "team In [b]" in why


@pytest.mark.parametrize(
    ("labels", "pod", "ok"),
    [
        ({"zone": "a"}, reqs(("zone", IN, ("a", "b"))), True),
        ({"zone": "c"}, reqs(("zone", IN, ("a", "b"))), False),
        ({}, reqs(("gpu", DNE, ())), True),
        ({}, reqs(("gpu", NOT_IN, ("x",))), True),
        ({}, reqs(("gpu", EXISTS, ())), False),
        ({"cpu": "16"}, reqs(("cpu", GT, ("8",))), True),
        ({"cpu": "4"}, reqs(("cpu", GT, ("8",))), False),
    ],
)
def test_node_labels_satisfy_requirements(labels: dict, pod: dict, ok: bool) -> None:
    assert (labels_satisfy(labels, pod) is None) is ok
