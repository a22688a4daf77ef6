"""The packaged us-east-1 catalog: every priced type, Karpenter's overhead arithmetic, offerings
only where priced, Karpenter's labels, and located errors for a broken CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from provisioner.catalog import (
    DEFAULT_ZONES,
    CatalogError,
    CatalogOptions,
    kube_reserved_cpu,
    load_catalog,
)
from provisioner.scheduling.model import CAPACITY_TYPE, ON_DEMAND, SPOT, ZONE, Resources

MIB = 1024**2
PACKAGED = Path(__file__).parents[2] / "provisioner" / "data" / "aws-us-east-1.csv"


def packaged_rows() -> list[dict[str, str]]:
    with PACKAGED.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_priced_type_is_in_the_catalog() -> None:
    catalog = load_catalog()
    assert len(catalog) == 1367 == len(packaged_rows())
    assert len({t.name for t in catalog.instance_types}) == 1367


def test_default_catalog_is_cached() -> None:
    assert load_catalog() is load_catalog()
    assert load_catalog(zones=("us-east-1a",)) is not load_catalog()


def test_m5_large_allocatable_by_hand() -> None:
    m5 = load_catalog().get("m5.large")
    # 8 GiB = 8192 MiB; VM overhead ceil(8192 x 0.075) = 615 MiB -> 7577 MiB
    assert m5.capacity == Resources(cpu=2000, memory=7577 * MIB, gpu=0, pods=110)
    # cpu: 6% of core 1 (60m) + 1% of core 2 (10m) = 70m
    # memory: kube-reserved 11 x 110 + 255 = 1465 MiB, eviction 100 MiB -> 7577 - 1565
    assert m5.allocatable == Resources(cpu=1930, memory=6012 * MIB, gpu=0, pods=110)


def test_g5_xlarge_allocatable_by_hand() -> None:
    g5 = load_catalog().get("g5.xlarge")
    # 16 GiB = 16384 MiB; ceil(16384 x 0.075) = 1229 MiB -> 15155 MiB
    assert g5.capacity == Resources(cpu=4000, memory=15155 * MIB, gpu=1, pods=110)
    # cpu: 60 + 10 + 0.5% of 2 cores (10) = 80m
    assert g5.allocatable == Resources(cpu=3920, memory=(15155 - 1565) * MIB, gpu=1, pods=110)
    assert g5.gpu_name == "a10g"


def test_graviton_keeps_64_mib_back() -> None:
    m7g = load_catalog().get("m7g.large")
    # Karpenter: arm64 types lose 64 MiB to CMA before the VM overhead: 8128 - ceil(609.6)
    assert m7g.capacity.memory == (8128 - 610) * MIB


@pytest.mark.parametrize(
    ("millicores", "reserved"),
    [(1000, 60), (2000, 70), (4000, 80), (8000, 90), (96000, 60 + 10 + 10 + 230), (500, 30)],
)
def test_kube_reserved_cpu_follows_karpenters_ranges(millicores: int, reserved: int) -> None:
    assert kube_reserved_cpu(millicores) == reserved


def test_options_change_the_arithmetic() -> None:
    options = CatalogOptions(vm_memory_overhead_percent=0.0, max_pods=29)
    m5 = load_catalog(options=options).get("m5.large")
    assert m5.capacity.memory == 8192 * MIB
    assert m5.capacity.pods == 29
    assert m5.allocatable.memory == (8192 - (11 * 29 + 255) - 100) * MIB


def test_offerings_every_zone_on_demand_and_spot_only_where_priced() -> None:
    catalog = load_catalog()
    rows = {r["instance_type"]: r for r in packaged_rows()}
    for instance_type in catalog.instance_types:
        row = rows[instance_type.name]
        on_demand = [o for o in instance_type.offerings if o.capacity_type == ON_DEMAND]
        spot = [o for o in instance_type.offerings if o.capacity_type == SPOT]
        assert [o.zone for o in on_demand] == list(DEFAULT_ZONES)
        assert {o.price for o in on_demand} == {float(row["on_demand_usd_hr"])}
        if row["spot_usd_hr"]:
            assert [o.zone for o in spot] == list(DEFAULT_ZONES)
            assert {o.price for o in spot} == {float(row["spot_usd_hr"])}
        else:
            assert spot == []
    unpriced = [t for t in catalog.instance_types if len(t.offerings) == 3]
    assert len(unpriced) == 1367 - 1338  # SOURCES.md: spot price on 1338 rows


def test_spot_interruption_rate_from_the_bucket_midpoint() -> None:
    catalog = load_catalog(options=CatalogOptions(default_interruption_rate=0.2))
    m5_spot = [o for o in catalog.get("m5.large").offerings if o.capacity_type == SPOT]
    assert {o.interruption_rate for o in m5_spot} == {0.175}  # "15-20%"
    inf2_spot = [o for o in catalog.get("inf2.xlarge").offerings if o.capacity_type == SPOT]
    assert {o.interruption_rate for o in inf2_spot} == {0.025}  # "<5%"
    # g6f has a spot price but no advisor bucket: the configured default
    g6f_spot = [o for o in catalog.get("g6f.large").offerings if o.capacity_type == SPOT]
    assert {o.interruption_rate for o in g6f_spot} == {0.2}
    on_demand = [o for o in catalog.get("m5.large").offerings if o.capacity_type == ON_DEMAND]
    assert {o.interruption_rate for o in on_demand} == {0.0}


def test_zones_are_configurable() -> None:
    catalog = load_catalog(zones=("us-east-1d",))
    assert {o.zone for o in catalog.get("c7i.large").offerings} == {"us-east-1d"}
    with pytest.raises(ValueError, match="zones must be non-empty and distinct"):
        load_catalog(zones=("us-east-1a", "us-east-1a"))


def test_labels_are_karpenters_well_known_labels() -> None:
    catalog = load_catalog()
    assert dict(catalog.get("m5.large").labels) == {
        "node.kubernetes.io/instance-type": "m5.large",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "karpenter.k8s.aws/instance-family": "m5",
        "karpenter.k8s.aws/instance-category": "m",
        "karpenter.k8s.aws/instance-generation": "5",
        "karpenter.k8s.aws/instance-size": "large",
        "karpenter.k8s.aws/instance-cpu": "2",
        "karpenter.k8s.aws/instance-memory": "8192",
    }
    p4d = catalog.get("p4d.24xlarge").labels
    assert p4d["karpenter.k8s.aws/instance-gpu-name"] == "a100"
    assert p4d["karpenter.k8s.aws/instance-gpu-count"] == "8"
    assert p4d["karpenter.k8s.aws/instance-gpu-manufacturer"] == "nvidia"
    assert p4d["karpenter.k8s.aws/instance-gpu-memory"] == "40960"  # per GPU, MiB
    inf2 = catalog.get("inf2.xlarge").labels
    assert inf2["karpenter.k8s.aws/instance-category"] == "inf"
    assert inf2["karpenter.k8s.aws/instance-accelerator-name"] == "inferentia2"
    assert inf2["karpenter.k8s.aws/instance-accelerator-count"] == "1"
    assert "karpenter.k8s.aws/instance-gpu-count" not in inf2
    assert catalog.get("m7g.large").labels["kubernetes.io/arch"] == "arm64"
    assert catalog.get("u-6tb1.112xlarge").labels["karpenter.k8s.aws/instance-generation"] == "1"


def test_zone_and_capacity_type_belong_to_offerings_not_types() -> None:
    for instance_type in load_catalog().instance_types:
        assert ZONE not in instance_type.labels
        assert CAPACITY_TYPE not in instance_type.labels


def test_gpu_capacity_comes_from_the_gpu_count() -> None:
    catalog = load_catalog()
    gpus = [t for t in catalog.instance_types if t.capacity.gpu > 0]
    assert len(gpus) == 77  # SOURCES.md: 77 rows with gpu_count >= 1
    assert catalog.get("p5.48xlarge").capacity.gpu == 8
    assert catalog.get("inf2.xlarge").capacity.gpu == 0  # accelerators are not GPUs


def test_legacy_rows_can_be_left_out() -> None:
    current = load_catalog(options=CatalogOptions(include_legacy=False))
    assert len(current) == 1345  # SOURCES.md: 22 rows not from the current Karpenter doc
    assert "p3.2xlarge" not in current and "g2.2xlarge" not in current
    assert "p3.2xlarge" in load_catalog()


def test_unknown_type_suggests_close_names() -> None:
    with pytest.raises(KeyError, match=r"unknown instance type 'm5\.larg'.*did you mean m5\.large"):
        load_catalog().get("m5.larg")


HEADER = (
    "instance_type,family,vcpu,memory_gib,arch,gpu_count,gpu_model,gpu_memory_gib,"
    "on_demand_usd_hr,spot_usd_hr,spot_savings_pct,interruption_bucket\n"
)


def write_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "types.csv"
    path.write_text(text)
    return path


def test_a_small_csv_without_the_extra_columns_loads(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER + "x1.large,x1,2,4,amd64,0,,,0.1,,,\n")
    catalog = load_catalog(path)
    assert len(catalog) == 1
    assert [o.capacity_type for o in catalog.get("x1.large").offerings] == [ON_DEMAND] * 3


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER.replace("vcpu,", "") + "x1.large,x1,4,amd64\n")
    with pytest.raises(CatalogError, match=f"^{path}: row 1: missing column 'vcpu'$"):
        load_catalog(path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("x1.large,x1,two,4,amd64,0,,,0.1,,,", "column 'vcpu': must be a number, got 'two'"),
        ("x1.large,x1,2.5,4,amd64,0,,,0.1,,,", "column 'vcpu': must be a whole number, got '2.5'"),
        ("x1.large,x1,2,4,amd64,0,,,,,,", "column 'on_demand_usd_hr': required"),
        ("x1.large,x1,2,4,sparc,0,,,0.1,,,", "column 'arch': must be amd64 or arm64, got 'sparc'"),
        ("x1.large,x1,2,-4,amd64,0,,,0.1,,,",
         "column 'memory_gib': must be a non-negative number, got '-4'"),
        ("x1.large,x1,2,4,amd64,0,,,0.1,0.05,,often",
         "column 'interruption_bucket': must be one of <5%, 5-10%, 10-15%, 15-20%, >20%, "
         "got 'often'"),
    ],
)  # fmt: skip
def test_bad_values_name_file_row_and_column(tmp_path: Path, row: str, message: str) -> None:
    good = "x0.large,x0,2,4,amd64,0,,,0.1,,,\n"
    path = write_csv(tmp_path, HEADER + good + row + "\n")
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert str(caught.value) == f"{path}: row 3: {message}"


def test_duplicate_types_are_an_error(tmp_path: Path) -> None:
    row = "x1.large,x1,2,4,amd64,0,,,0.1,,,\n"
    path = write_csv(tmp_path, HEADER + row + row)
    with pytest.raises(CatalogError, match=r"row 3: column 'instance_type': duplicate 'x1\.large'"):
        load_catalog(path)


def test_unreadable_file_is_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "missing.csv")
