"""The gpu trigger: each preset against a real Prometheus holding dcgm-exporter, vLLM and
Triton series, through to a replica count; and the NVML source on this node's GPUs."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import pynvml
import pytest

from scaler.api import ScaledObject
from scaler.decision import ScalingState, TriggerReading, decide
from scaler.triggers import trigger_specs
from scalers.base import BadMetric, MetricType, Scaler, SourceUnreachable
from scalers.context import ScalerContext
from scalers.pools import Pools
from scalers.registry import build_scaler, parse_metadata
from tests.integration.prometheus_server import Series, running_prometheus

END = int(time.time())
H100_FB_MIB = 81559  # framebuffer of an H100 80GB HBM3 as dcgm-exporter reports it (used + free)
ML = 'namespace="ml",pod=~"llm-.*"'


def _dcgm_labels(gpu: int, pod: str, namespace: str, node: str) -> dict[str, str]:
    # the labels dcgm-exporter puts on a GPU that a pod uses (Kubernetes pod mapping on)
    return {
        "gpu": str(gpu),
        "UUID": f"GPU-{node}-{gpu}",
        "device": f"nvidia{gpu}",
        "modelName": "NVIDIA H100 80GB HBM3",
        "Hostname": node,
        "DCGM_FI_DRIVER_VERSION": "550.54.15",
        "container": "vllm" if namespace == "ml" else "trainer",
        "namespace": namespace,
        "pod": pod,
    }


def _level(final: float) -> Any:
    # load builds up over the half hour and holds at `final` for the last five minutes
    return lambda age: final if age <= 300 else final * (1 - age / 3600) + 5 * math.sin(age)


# two vLLM pods with two GPUs each in `ml`, and a training pod elsewhere that is always busy
GPUS = [
    (0, "llm-7d9f-a", "ml", "node-a", 90.0, 60000.0),
    (1, "llm-7d9f-a", "ml", "node-a", 70.0, 50000.0),
    (0, "llm-7d9f-b", "ml", "node-b", 80.0, 40000.0),
    (1, "llm-7d9f-b", "ml", "node-b", 60.0, 30000.0),
    (0, "trainer-0", "batch", "node-c", 100.0, 80000.0),
]
SERIES = [
    *(
        Series("DCGM_FI_DEV_GPU_UTIL", _dcgm_labels(g, pod, ns, node), _level(util))
        for g, pod, ns, node, util, _ in GPUS
    ),
    *(
        Series("DCGM_FI_DEV_FB_USED", _dcgm_labels(g, pod, ns, node), _level(used))
        for g, pod, ns, node, _, used in GPUS
    ),
    *(
        Series("DCGM_FI_DEV_FB_FREE", _dcgm_labels(g, pod, ns, node), _level(H100_FB_MIB - used))
        for g, pod, ns, node, _, used in GPUS
    ),
    *(
        Series(
            name,
            {
                "model_name": "meta-llama/Llama-3.1-8B-Instruct",
                "engine": "0",
                "namespace": "ml",
                "pod": pod,
            },
            _level(value),
        )
        for name, pod, value in [
            ("vllm:num_requests_waiting", "llm-7d9f-a", 12.0),
            ("vllm:num_requests_waiting", "llm-7d9f-b", 9.0),
            ("vllm:num_requests_running", "llm-7d9f-a", 32.0),
            ("vllm:num_requests_running", "llm-7d9f-b", 30.0),
            ("vllm:gpu_cache_usage_perc", "llm-7d9f-a", 0.82),
            ("vllm:gpu_cache_usage_perc", "llm-7d9f-b", 0.64),
        ]
    ),
    *(
        Series(
            "nv_inference_pending_request_count",
            {"model": model, "version": "1", "namespace": "vision", "pod": pod},
            _level(pending),
        )
        for model, pod, pending in [
            ("resnet50", "triton-0", 5.0),
            ("resnet50", "triton-1", 3.0),
            ("yolo", "triton-0", 11.0),
        ]
    ),
]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_prometheus(tmp_path_factory.mktemp("prometheus-gpu"), SERIES, END) as url:
        yield url


def scaled_object(metadata: dict[str, str], metric_type: str | None = None) -> ScaledObject:
    trigger: dict[str, Any] = {"type": "gpu", "name": "gpu", "metadata": metadata}
    if metric_type is not None:
        trigger["metricType"] = metric_type
    return ScaledObject.model_validate(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "llm", "namespace": "ml"},
            "spec": {
                "scaleTargetRef": {"name": "llm"},
                "minReplicaCount": 1,
                "maxReplicaCount": 16,
                "triggers": [trigger],
            },
        }
    )


def live_scaler(so: ScaledObject, pools: Pools) -> Scaler:
    (_, spec), trigger = trigger_specs(so)[0], so.spec.triggers[0]
    parsed = parse_metadata(trigger.type, trigger.metadata, trigger.metric_type)
    return build_scaler(ScalerContext(trigger.type, parsed, spec, pools, timeout=2.0))


async def replicas_for(so: ScaledObject, pools: Pools, current: int) -> tuple[float, int]:
    """The trigger's value now and the replica count the decision makes of it."""
    name, spec = trigger_specs(so)[0]
    scaler = live_scaler(so, pools)
    try:
        value = await scaler.read()
    finally:
        await scaler.close()
    decision = decide(so, current, [TriggerReading(name, spec, value=value)], ScalingState(), 0.0)
    return value, decision.desired_replicas


FRACTION = (60000 + 50000 + 40000 + 30000) / 4 / H100_FB_MIB


@pytest.mark.parametrize(
    ("metadata", "current", "value", "replicas", "metric_type"),
    [
        # average utilization of the workload's 4 GPUs, 75% against 60%: 4 * 75/60 -> 5
        ({"selector": ML, "targetValue": "60"}, 4, 75.0, 5, MetricType.VALUE),
        # the busiest GPU, 90%: 4 * 90/60 -> 6
        ({"selector": ML, "aggregation": "max", "targetValue": "60"}, 4, 90.0, 6, MetricType.VALUE),
        # without a selector the training GPU in another namespace counts too: 80%
        ({"targetValue": "80"}, 4, 80.0, 4, MetricType.VALUE),
        # memory in MiB, 45000 on average against 40000: 4 * 1.125 -> 5
        (
            {"preset": "memory", "selector": ML, "targetValue": "40000"},
            4,
            45000.0,
            5,
            MetricType.VALUE,
        ),
        # memory as a fraction of the framebuffer, 0.55 against 0.5: 4 * 1.10 -> 5
        (
            {"preset": "memory", "unit": "fraction", "selector": ML, "targetValue": "0.5"},
            4,
            FRACTION,
            5,
            MetricType.VALUE,
        ),
        # 21 requests waiting in vLLM, 5 per replica: ceil(21/5) -> 5
        (
            {"preset": "vllm-queue", "selector": 'namespace="ml"', "targetValue": "5"},
            2,
            21.0,
            5,
            MetricType.AVERAGE_VALUE,
        ),
        # 8 pending in Triton for resnet50, 4 per replica -> 2
        (
            {"preset": "triton-queue", "selector": 'model="resnet50"', "targetValue": "4"},
            1,
            8.0,
            2,
            MetricType.AVERAGE_VALUE,
        ),
        # a custom query: the fullest KV cache, 0.82 against 0.8 is within the HPA's tolerance
        (
            {
                "preset": "custom",
                "query": 'vllm:gpu_cache_usage_perc{namespace="ml"}',
                "aggregation": "max",
                "targetValue": "0.8",
            },
            2,
            0.82,
            2,
            MetricType.VALUE,
        ),
    ],
)
async def test_each_preset_reads_its_value_and_decides_replicas(
    prometheus: str,
    pools: Pools,
    metadata: dict[str, str],
    current: int,
    value: float,
    replicas: int,
    metric_type: MetricType,
) -> None:
    so = scaled_object({"serverAddress": prometheus, **metadata})
    assert trigger_specs(so)[0][1].metric_type is metric_type
    read, desired = await replicas_for(so, pools, current)
    assert read == pytest.approx(value)
    assert desired == replicas


async def test_a_selector_that_matches_nothing_reads_zero_or_fails(
    prometheus: str, pools: Pools
) -> None:
    absent = {"serverAddress": prometheus, "selector": 'namespace="gone"', "targetValue": "60"}
    assert await live_scaler(scaled_object(absent), pools).read() == 0.0
    strict = scaled_object({**absent, "ignoreNullValues": "false"})
    with pytest.raises(BadMetric, match="returned no data"):
        await live_scaler(strict, pools).read()


async def test_a_queue_burst_scales_up_within_the_hpas_default_policy(
    prometheus: str, pools: Pools
) -> None:
    so = scaled_object(
        {"serverAddress": prometheus, "preset": "vllm-queue", "targetValue": "3"}, "AverageValue"
    )
    # 21 waiting / 3 per replica asks for 7; the HPA adds at most 4 pods (or 100%) per 15s
    assert await replicas_for(so, pools, 1) == (21.0, 5)


# --- NVML: this node's GPUs ------------------------------------------------------------------


def _nvml_or_skip() -> None:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        pytest.skip(f"no NVIDIA GPU or driver on this machine (nvmlInit: {exc})")


def _nvml_devices() -> list[Any]:
    return [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]


async def test_nvml_read_is_a_value_with_a_driver_and_an_error_without(pools: Pools) -> None:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        so = scaled_object({"source": "nvml", "targetValue": "60"})
        scaler = live_scaler(so, pools)
        with pytest.raises(SourceUnreachable, match="NVML unavailable"):
            await scaler.read()
        await scaler.close()
        return
    pynvml.nvmlShutdown()
    # a driver is here: the reading itself is checked by the tests below
    so = scaled_object({"source": "nvml", "targetValue": "60"})
    scaler = live_scaler(so, pools)
    assert 0.0 <= await scaler.read() <= 100.0
    await scaler.close()


async def test_nvml_reads_this_nodes_gpus(pools: Pools) -> None:
    _nvml_or_skip()
    try:
        devices = _nvml_devices()
        used = [pynvml.nvmlDeviceGetMemoryInfo(d).used / 2**20 for d in devices]
        totals = [pynvml.nvmlDeviceGetMemoryInfo(d).total / 2**20 for d in devices]
    finally:
        pynvml.nvmlShutdown()

    utilization = live_scaler(scaled_object({"source": "nvml", "targetValue": "60"}), pools)
    memory = live_scaler(
        scaled_object({"source": "nvml", "preset": "memory", "targetValue": "1024"}), pools
    )
    total = live_scaler(
        scaled_object(
            {"source": "nvml", "preset": "memory", "aggregation": "sum", "targetValue": "1024"}
        ),
        pools,
    )
    fraction = live_scaler(
        scaled_object(
            {"source": "nvml", "preset": "memory", "unit": "fraction", "targetValue": "0.5"}
        ),
        pools,
    )
    try:
        assert 0.0 <= await utilization.read() <= 100.0
        # memory moves a little as other processes run: within 256 MiB of NVML read directly
        assert await memory.read() == pytest.approx(sum(used) / len(used), abs=256)
        assert await total.read() == pytest.approx(sum(used), abs=256 * len(used))
        share = await fraction.read()
        assert 0.0 <= share <= 1.0
        assert share == pytest.approx(
            sum(u / t for u, t in zip(used, totals, strict=True)) / len(used), abs=0.01
        )
    finally:
        for scaler in (utilization, memory, total, fraction):
            await scaler.close()


async def test_nvml_memory_drives_a_replica_count(pools: Pools) -> None:
    _nvml_or_skip()
    pynvml.nvmlShutdown()
    # a target at half the memory in use asks for twice the replicas (Value: current * ratio)
    probe = live_scaler(
        scaled_object({"source": "nvml", "preset": "memory", "targetValue": "1"}), pools
    )
    in_use = await probe.read()
    await probe.close()
    so = scaled_object(
        {"source": "nvml", "preset": "memory", "targetValue": str(max(in_use, 2.0) / 2)}
    )
    value, desired = await replicas_for(so, pools, 3)
    assert value > 0
    assert desired == min(16, math.ceil(round(3 * value / (max(in_use, 2.0) / 2), 9)))
