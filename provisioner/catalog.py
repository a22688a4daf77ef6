"""The instance-type catalog: AWS us-east-1 types, their offerings and prices, from a CSV.

Each row becomes a `provisioner.scheduling.model.InstanceType` with the well-known labels
Karpenter's AWS provider sets, capacity and allocatable computed with Karpenter's overhead
rules, and one offering per zone and capacity type.

The CSV (package data `provisioner/data/aws-us-east-1.csv`, sources in `data/SOURCES.md`)
carries regional prices only, no availability-zone data: every zone gets the same on-demand
and spot price, and every type is assumed offered in every zone. Spot offerings exist only
where the CSV has a spot price.
"""

from __future__ import annotations

import csv
import difflib
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from provisioner.scheduling.model import (
    ARCH,
    INSTANCE_TYPE,
    ON_DEMAND,
    OS,
    SPOT,
    InstanceType,
    Offering,
    Resources,
)

DEFAULT_ZONES: tuple[str, ...] = ("us-east-1a", "us-east-1b", "us-east-1c")

AWS = "karpenter.k8s.aws"
INSTANCE_FAMILY = f"{AWS}/instance-family"
INSTANCE_CATEGORY = f"{AWS}/instance-category"
INSTANCE_GENERATION = f"{AWS}/instance-generation"
INSTANCE_SIZE = f"{AWS}/instance-size"
INSTANCE_CPU = f"{AWS}/instance-cpu"
INSTANCE_MEMORY = f"{AWS}/instance-memory"
INSTANCE_GPU_COUNT = f"{AWS}/instance-gpu-count"
INSTANCE_GPU_NAME = f"{AWS}/instance-gpu-name"
INSTANCE_GPU_MANUFACTURER = f"{AWS}/instance-gpu-manufacturer"
INSTANCE_GPU_MEMORY = f"{AWS}/instance-gpu-memory"
INSTANCE_ACCELERATOR_NAME = f"{AWS}/instance-accelerator-name"
INSTANCE_ACCELERATOR_MANUFACTURER = f"{AWS}/instance-accelerator-manufacturer"
INSTANCE_ACCELERATOR_COUNT = f"{AWS}/instance-accelerator-count"

MIB = 1024**2
GIB = 1024**3

# Spot Instance Advisor's monthly interruption-frequency buckets, taken at their midpoints
INTERRUPTION_BUCKETS: Mapping[str, float] = {
    "<5%": 0.025,
    "5-10%": 0.075,
    "10-15%": 0.125,
    "15-20%": 0.175,
    ">20%": 0.25,
}
# rows whose specs come from Karpenter's current generated instance-type doc (SOURCES.md)
CURRENT_SPEC_SOURCE_PREFIX = "karpenter-docs-preview"

_REQUIRED_COLUMNS = (
    "instance_type",
    "family",
    "vcpu",
    "memory_gib",
    "arch",
    "gpu_count",
    "gpu_model",
    "gpu_memory_gib",
    "on_demand_usd_hr",
    "spot_usd_hr",
    "interruption_bucket",
)
# the CSV's extra columns; a catalog without them just lacks those labels
_OPTIONAL_COLUMNS = (
    "gpu_manufacturer",
    "gpu_memory_per_gpu_gib",
    "accelerator_name",
    "accelerator_count",
    "spec_source",
)
# Karpenter AWS: category and generation come from the type name (instancetype/types.go)
_INSTANCE_TYPE_SCHEME = re.compile(r"(^[a-z]+)(-[0-9]+tb)?([0-9]+).*\.")
# AWS Neuron devices (Inferentia, Trainium) are labelled with manufacturer "aws"
_NEURON_ACCELERATORS = frozenset({"inferentia", "inferentia2", "trainium", "trainium2"})


class CatalogError(ValueError):
    """A catalog file that cannot be read; the message names file, row and column."""


@dataclass(frozen=True, slots=True)
class CatalogOptions:
    """How rows become instance types.

    - vm_memory_overhead_percent: memory the hypervisor keeps, as Karpenter's AWS setting
      `vmMemoryOverheadPercent` (default 0.075).
    - max_pods: pods per node. Karpenter on AWS uses ENI-limited density (e.g. 29 on
      m5.large), but the CSV has no ENI data, so every type gets this number; 110 is the
      kubelet default (and Karpenter's when ENI-limited density is off). It also sizes
      kube-reserved memory (11 MiB per pod).
    - default_interruption_rate: monthly spot interruption rate for types the Spot Advisor
      does not cover (about a third of the rows); 0.10 sits mid-range of its buckets.
    - include_legacy: keep the rows whose specs come from older Karpenter docs or from the
      naming-rule fallback (SOURCES.md: types that probably can no longer be launched).
    """

    vm_memory_overhead_percent: float = 0.075
    max_pods: int = 110
    default_interruption_rate: float = 0.10
    include_legacy: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.vm_memory_overhead_percent < 1:
            raise ValueError("vm_memory_overhead_percent must be in [0, 1)")
        if self.max_pods < 1:
            raise ValueError("max_pods must be at least 1")
        if not 0 <= self.default_interruption_rate <= 1:
            raise ValueError("default_interruption_rate must be in [0, 1]")


@dataclass(frozen=True)
class Catalog:
    """Instance types by name, in the CSV's order."""

    instance_types: tuple[InstanceType, ...]
    source: str = ""
    _by_name: dict[str, InstanceType] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {t.name: t for t in self.instance_types})

    def get(self, name: str) -> InstanceType:
        """The type called `name`; KeyError naming the closest known types otherwise."""
        try:
            return self._by_name[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._by_name, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(
                f"unknown instance type {name!r} in catalog {self.source or '(memory)'}{hint}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self.instance_types)

    def __iter__(self) -> Iterator[InstanceType]:
        return iter(self.instance_types)


def kube_reserved_cpu(millicores: int) -> int:
    """Millicores Karpenter reserves for the kubelet on AWS."""
    # Karpenter AWS kubeReservedResources: 6% of core 1, 1% of core 2, 0.5% of cores 3-4,
    # 0.25% above, each range truncated to whole millicores
    reserved = 0
    for start, end, share in ((0, 1000, 0.06), (1000, 2000, 0.01), (2000, 4000, 0.005)):
        if millicores > start:
            reserved += int((min(millicores, end) - start) * share)
    if millicores > 4000:
        reserved += int((millicores - 4000) * 0.0025)
    return reserved


def kube_reserved_memory(max_pods: int) -> int:
    """Bytes Karpenter reserves for the kubelet on AWS."""
    # Karpenter AWS kubeReservedResources: (11 MiB x max pods) + 255 MiB
    return (11 * max_pods + 255) * MIB


# Karpenter AWS evictionThreshold: memory.available 100Mi unless evictionHard says otherwise
EVICTION_THRESHOLD_MEMORY = 100 * MIB


def node_memory(memory_mib: int, arch: str, overhead_percent: float) -> int:
    """Bytes of memory a node reports, after the VM overhead Karpenter subtracts."""
    # Karpenter AWS memory(): Graviton keeps 64 MiB for CMA; then vmMemoryOverheadPercent,
    # rounded up to whole MiB
    if arch == "arm64":
        memory_mib -= 64
    return (memory_mib - math.ceil(memory_mib * overhead_percent)) * MIB


def load_catalog(
    path: Path | None = None,
    zones: Sequence[str] = DEFAULT_ZONES,
    options: CatalogOptions = CatalogOptions(),
) -> Catalog:
    """The catalog in `path` (default: the packaged us-east-1 CSV, cached)."""
    zones = tuple(zones)
    if not zones or len(set(zones)) != len(zones):
        raise ValueError(f"zones must be non-empty and distinct, got {list(zones)}")
    if path is None:
        return _packaged_catalog(zones, options)
    return _read_catalog(Path(path), zones, options)


@lru_cache(maxsize=8)
def _packaged_catalog(zones: tuple[str, ...], options: CatalogOptions) -> Catalog:
    data = resources.files("provisioner") / "data" / "aws-us-east-1.csv"
    with resources.as_file(data) as path:
        return _read_catalog(path, zones, options)


def _read_catalog(path: Path, zones: tuple[str, ...], options: CatalogOptions) -> Catalog:
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        for column in _REQUIRED_COLUMNS:
            if column not in header:
                raise CatalogError(f"{path}: row 1: missing column {column!r}")
        types: list[InstanceType] = []
        seen: set[str] = set()
        for row_number, row in enumerate(reader, start=2):
            parsed = _Row(path, row_number, row)
            if not options.include_legacy and not parsed.current:
                continue
            instance_type = parsed.instance_type(zones, options)
            if instance_type.name in seen:
                raise CatalogError(
                    f"{path}: row {row_number}: column 'instance_type': "
                    f"duplicate {instance_type.name!r}"
                )
            seen.add(instance_type.name)
            types.append(instance_type)
    return Catalog(tuple(types), source=str(path))


class _Row:
    """One CSV row, read with errors that name the file, row and column."""

    def __init__(self, path: Path, number: int, row: Mapping[str, str | None]) -> None:
        self.path, self.number, self.row = path, number, row

    def error(self, column: str, message: str) -> CatalogError:
        return CatalogError(f"{self.path}: row {self.number}: column {column!r}: {message}")

    def text(self, column: str) -> str:
        return (self.row.get(column) or "").strip()

    def required(self, column: str) -> str:
        value = self.text(column)
        if not value:
            raise self.error(column, "required")
        return value

    def number_in(self, column: str, *, required: bool) -> float | None:
        value = self.required(column) if required else self.text(column)
        if not value:
            return None
        try:
            number = float(value)
        except ValueError:
            raise self.error(column, f"must be a number, got {value!r}") from None
        if not math.isfinite(number) or number < 0:
            raise self.error(column, f"must be a non-negative number, got {value!r}")
        return number

    def whole(self, column: str, *, required: bool) -> int | None:
        number = self.number_in(column, required=required)
        if number is None:
            return None
        if number != int(number):
            raise self.error(column, f"must be a whole number, got {self.text(column)!r}")
        return int(number)

    @property
    def current(self) -> bool:
        source = self.text("spec_source")
        return not source or source.startswith(CURRENT_SPEC_SOURCE_PREFIX)

    def instance_type(self, zones: tuple[str, ...], options: CatalogOptions) -> InstanceType:
        name = self.required("instance_type")
        arch = self.required("arch")
        if arch not in ("amd64", "arm64"):
            raise self.error("arch", f"must be amd64 or arm64, got {arch!r}")
        vcpu = self.whole("vcpu", required=True) or 0
        memory_gib = self.number_in("memory_gib", required=True) or 0.0
        gpu_count = self.whole("gpu_count", required=True) or 0
        on_demand = self.number_in("on_demand_usd_hr", required=True) or 0.0
        spot = self.number_in("spot_usd_hr", required=False)
        bucket = self.text("interruption_bucket")
        if bucket and bucket not in INTERRUPTION_BUCKETS:
            known = ", ".join(INTERRUPTION_BUCKETS)
            raise self.error("interruption_bucket", f"must be one of {known}, got {bucket!r}")
        interruption = INTERRUPTION_BUCKETS.get(bucket, options.default_interruption_rate)

        memory_mib = round(memory_gib * 1024)
        capacity = Resources(
            cpu=vcpu * 1000,
            memory=node_memory(memory_mib, arch, options.vm_memory_overhead_percent),
            gpu=gpu_count,
            pods=options.max_pods,
        )
        overhead = Resources(
            cpu=kube_reserved_cpu(capacity.cpu),
            memory=kube_reserved_memory(options.max_pods) + EVICTION_THRESHOLD_MEMORY,
        )
        offerings: list[Offering] = []
        for zone in zones:
            offerings.append(Offering(zone, ON_DEMAND, on_demand))
            if spot is not None:
                offerings.append(Offering(zone, SPOT, spot, interruption_rate=interruption))
        gpu_name = self.text("gpu_model") or None
        return InstanceType(
            name=name,
            labels=self.labels(name, arch, vcpu, memory_mib, gpu_count),
            capacity=capacity,
            allocatable=capacity - overhead,
            offerings=tuple(offerings),
            gpu_name=gpu_name,
        )

    def labels(
        self, name: str, arch: str, vcpu: int, memory_mib: int, gpu_count: int
    ) -> dict[str, str]:
        """Karpenter's well-known labels for the type; zone and capacity type are per offering."""
        labels = {
            INSTANCE_TYPE: name,
            ARCH: arch,
            OS: "linux",
            INSTANCE_FAMILY: self.required("family"),
            INSTANCE_CPU: str(vcpu),
            INSTANCE_MEMORY: str(memory_mib),
        }
        scheme = _INSTANCE_TYPE_SCHEME.match(name)
        if scheme:
            labels[INSTANCE_CATEGORY] = scheme.group(1)
            labels[INSTANCE_GENERATION] = scheme.group(3)
        if "." in name:
            labels[INSTANCE_SIZE] = name.split(".", 1)[1]
        gpu_model = self.text("gpu_model")
        if gpu_model:
            # fractional GPUs (g6f) report a count of 0 but still name the GPU, as the API does
            labels[INSTANCE_GPU_NAME] = gpu_model
            labels[INSTANCE_GPU_COUNT] = str(gpu_count)
            manufacturer = self.text("gpu_manufacturer")
            if manufacturer:
                labels[INSTANCE_GPU_MANUFACTURER] = manufacturer
            per_gpu = self.number_in("gpu_memory_per_gpu_gib", required=False)
            if per_gpu is None:
                total = self.number_in("gpu_memory_gib", required=False)
                per_gpu = total / gpu_count if total is not None and gpu_count else total
            if per_gpu is not None:
                labels[INSTANCE_GPU_MEMORY] = str(round(per_gpu * 1024))
        accelerator = self.text("accelerator_name")
        if accelerator:
            labels[INSTANCE_ACCELERATOR_NAME] = accelerator
            count = self.whole("accelerator_count", required=True)
            labels[INSTANCE_ACCELERATOR_COUNT] = str(count)
            if accelerator in _NEURON_ACCELERATORS:
                labels[INSTANCE_ACCELERATOR_MANUFACTURER] = "aws"
        return labels
