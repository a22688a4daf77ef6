"""Packing quality on generated mixes over the real catalog (ratios printed with -s)."""

import pytest

from provisioner.catalog import load_catalog
from provisioner.scheduling.ffd import plan_ffd
from provisioner.scheduling.mixes import generate_mix
from provisioner.scheduling.options import PackOptions
from provisioner.scheduling.packer import plan

# no wall-clock cap: the same plan on any machine
OPTIONS = PackOptions(time_budget_seconds=None, improvement_rounds=200)
ZONES_TOO = PackOptions(time_budget_seconds=None, improvement_rounds=200, merge_zones=True)
MIXES = [(100, 1), (1000, 1), (1000, 2)]
# no cap, 2026-11-26: seeds 1-6 at 1,000 pods 1.044, 1.044, 1.054, 1.029, 1.054, 1.028; 10,000
# pods 1.031. Groups of one pool that differ only in type-level requirements are packed as one
# problem (seed 3's GPU pods pinned to a GPU model now share nodes with the others: 1.068 ->
# 1.054; seed 6: 1.042 -> 1.028). Seeds 3 and 5 still miss 5% by default: their zone-spread
# groups are packed apart from the unzoned pods; merging those too (`merge_zones`) reaches 5%
# on both (below) but takes 6-8 s a plan
WITHIN_FIVE = [(1000, 1), (1000, 2), (1000, 4), (1000, 6), (10000, 1)]
MISSED = [(1000, 3), (1000, 5)]


@pytest.fixture(scope="module")
def catalog_types() -> tuple:
    return load_catalog().instance_types


class _Plans(dict):  # type: ignore[type-arg]
    """(pods, seed) -> (plan, FFD plan), planned on first use."""

    def __init__(self, types: tuple) -> None:
        super().__init__()
        self.types = types

    def __missing__(self, key: tuple[int, int]) -> tuple:
        pods, seed = key
        mix = generate_mix(pods, seed=seed)
        best = plan(mix.pods, mix.templates, self.types, options=OPTIONS)
        baseline = plan_ffd(mix.pods, mix.templates, self.types, options=OPTIONS)
        print(
            f"{mix.name}: price {best.total_price:.2f} ffd {baseline.total_price:.2f} "
            f"bound {best.lower_bound:.2f} ratio {best.total_price / best.lower_bound:.4f}"
        )
        self[key] = (best, baseline)
        return self[key]


@pytest.fixture(scope="module")
def results(catalog_types: tuple) -> dict:
    return _Plans(catalog_types)


@pytest.mark.parametrize(("pods", "seed"), MIXES)
def test_every_pod_of_a_mix_is_placed(results: dict, pods: int, seed: int) -> None:
    best, _ = results[(pods, seed)]
    assert not best.unschedulable
    assert sum(len(n.pods) for n in best.new_nodes) == pods


@pytest.mark.parametrize(("pods", "seed"), MIXES)
def test_never_dearer_than_ffd(results: dict, pods: int, seed: int) -> None:
    best, baseline = results[(pods, seed)]
    assert best.total_price <= baseline.total_price + 1e-9


@pytest.mark.parametrize(("pods", "seed"), MIXES)
def test_within_twelve_percent_of_the_lp_bound(results: dict, pods: int, seed: int) -> None:
    best, _ = results[(pods, seed)]
    assert best.lower_bound <= best.total_price <= 1.12 * best.lower_bound


@pytest.mark.parametrize(("pods", "seed"), WITHIN_FIVE)
def test_within_five_percent_of_the_lp_bound_from_1000_pods(
    results: dict, pods: int, seed: int
) -> None:
    best, baseline = results[(pods, seed)]
    assert best.total_price <= 1.05 * best.lower_bound
    assert best.total_price <= baseline.total_price + 1e-9


@pytest.mark.xfail(strict=True, reason="5% not reached on these seeds")
@pytest.mark.parametrize(("pods", "seed"), MISSED)
def test_within_five_percent_on_the_seeds_it_misses(results: dict, pods: int, seed: int) -> None:
    best, baseline = results[(pods, seed)]
    assert best.total_price <= baseline.total_price + 1e-9
    assert best.total_price <= 1.05 * best.lower_bound


@pytest.mark.parametrize(("pods", "seed"), MISSED)
def test_merging_zone_groups_too_reaches_five_percent_on_those_seeds(
    catalog_types: tuple, pods: int, seed: int
) -> None:
    mix = generate_mix(pods, seed=seed)
    best = plan(mix.pods, mix.templates, catalog_types, options=ZONES_TOO)
    baseline = plan_ffd(mix.pods, mix.templates, catalog_types, options=ZONES_TOO)
    print(f"{mix.name} merge_zones: ratio {best.total_price / best.lower_bound:.4f}")
    assert not best.unschedulable
    assert best.total_price <= baseline.total_price + 1e-9
    assert best.total_price <= 1.05 * best.lower_bound


def test_gpu_pods_land_on_nvidia_types_with_enough_gpus(
    results: dict, catalog_types: tuple
) -> None:
    by_name = {t.name: t for t in catalog_types}
    best, _ = results[(1000, 1)]
    for node in best.new_nodes:
        it = by_name[node.instance_type]
        gpus = sum(p.requests.gpu for p in node.pods)
        if gpus:
            assert it.labels["karpenter.k8s.aws/instance-gpu-manufacturer"] == "nvidia"
            assert gpus <= it.allocatable.gpu
        else:
            assert it.allocatable.gpu == 0 and it.gpu_name is None
