"""Simulator throughput: simulated seconds per wall second, 7 days at 1 s, 10 ScaledObjects.

Prints one JSON object. The ten workloads are the three example scenarios' workloads,
repeated with distinct names (4 HTTP on NYC taxi, 3 Kafka on AAPL tweets, 3 bursty ELB).
Run: .venv/bin/python bench/simulate.py [--days 7] [--objects 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import tempfile
import time
from pathlib import Path

import yaml

from ebbflow.sim.runner import simulate
from ebbflow.sim.scenario import load_scenario
from ebbflow.sim.workload import SimulatedDeployment

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SOURCES = ("http-nyc-taxi", "kafka-twitter-aapl", "bursty-api-elb")


def build(days: float, objects: int, folder: Path) -> Path:
    templates = []
    for name in SOURCES:
        raw = yaml.safe_load((EXAMPLES / "scenarios" / f"{name}.yaml").read_text())
        workload = raw["workloads"][0]
        workload["trace"]["path"] = str(
            (EXAMPLES / "scenarios" / workload["trace"]["path"]).resolve()
        )
        templates.append(workload)
    workloads = []
    for i in range(objects):
        w = json.loads(json.dumps(templates[[0, 1, 2, 0, 1, 2, 0, 1, 2, 0][i % 10]]))
        name = f"{w['name']}-{i}"
        w["name"] = name
        w["scaledObject"]["metadata"]["name"] = name
        w["scaledObject"]["spec"]["scaleTargetRef"]["name"] = name
        workloads.append(w)
    scenario = {"name": "bench", "duration": f"{days}d", "seed": 1, "workloads": workloads}
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(scenario))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--objects", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        scenario = load_scenario(build(args.days, args.objects, Path(folder)))
        began = time.perf_counter()
        cpu_began = time.process_time()
        # reactive: the figure is the control path's cost (forecast fits are measured apart)
        result = asyncio.run(simulate(scenario, predictive=False))
        wall = time.perf_counter() - began
        cpu = time.process_time() - cpu_began
        # baseline in the same run: the per-second accounting alone, at fixed replicas,
        # advanced in the same steps the full run took (one per poll of each object)
        polls = sum(w.so.spec.polling_interval for w in scenario.workloads) / len(
            scenario.workloads
        )
        deployments = [SimulatedDeployment(w, random.Random(1)) for w in scenario.workloads]
        for d in deployments:
            d.scale_to(d.workload.spec.initial_replicas or 1, 0)
        began = time.perf_counter()
        step = polls / len(deployments)
        now = 0.0
        while now < scenario.duration:
            now = min(now + step, scenario.duration)
            for d in deployments:
                d.advance(now)
        accounting_only = time.perf_counter() - began
    simulated = scenario.duration
    print(
        json.dumps(
            {
                "benchmark": "simulate",
                "scaledObjects": args.objects,
                "simulatedSeconds": simulated,
                "resolutionSeconds": 1,
                "wallSeconds": round(wall, 2),
                "cpuSeconds": round(cpu, 2),
                "simulatedSecondsPerWallSecond": round(simulated / wall),
                "accountingOnlyWallSeconds": round(accounting_only, 2),
                "ratioToAccountingOnly": round(wall / accounting_only, 2),
                "goalWallSeconds": 60,
                "scaleEvents": sum(w.scale_events for w in result.workloads),
                "controllerErrors": result.controller_errors,
                "python": platform.python_version(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
