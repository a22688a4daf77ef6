"""Node provisioning benchmark: plan N pending pods over the real 1,367-type catalog.

Prints JSON, one object per mix: pods, types, seconds (best of --repeat), podsPerSecond,
price (plan), ffdPrice and ffdSeconds (Karpenter-style FFD baseline, same run), lowerBound
(`provisioner/scheduling/bound.py`), ratioToBound, ratioToFfd.

    .venv/bin/python bench/provision.py --pods 100 1000 10000 --repeat 3

`--budget none` plans without the wall-clock cap on improvement (`PackOptions`): the same,
machine-independent plan every time (the quality the tests check); the default 2 s cap makes
quality depend on how fast (and how busy) the machine is. `--merge-zones` packs a pool's
zone-spread sub-classes together with its unzoned pods (`PackOptions.merge_zones`, off by
default: cheaper plans in about the same time, see BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import time

from provisioner.catalog import load_catalog
from provisioner.scheduling.ffd import plan_ffd
from provisioner.scheduling.mixes import generate_mix
from provisioner.scheduling.options import PackOptions
from provisioner.scheduling.packer import plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--spot", action="store_true", help="pools may buy spot too")
    parser.add_argument(
        "--budget", default="2", help="seconds of improvement per plan, or 'none' for no cap"
    )
    parser.add_argument(
        "--merge-zones",
        action="store_true",
        help="also pack groups of a pool that differ in zone as one problem (PackOptions)",
    )
    args = parser.parse_args()
    budget = None if args.budget == "none" else float(args.budget)
    options = PackOptions(time_budget_seconds=budget, merge_zones=args.merge_zones)
    types = load_catalog().instance_types
    results = []
    for count in args.pods:
        mix = generate_mix(count, seed=args.seed, spot=args.spot)
        best = float("inf")
        result = None
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = plan(mix.pods, mix.templates, types, options=options)
            best = min(best, time.perf_counter() - start)
        assert result is not None
        start = time.perf_counter()
        baseline = plan_ffd(mix.pods, mix.templates, types, options=options)
        ffd_seconds = time.perf_counter() - start
        price = result.total_price
        results.append(
            {
                "mix": mix.name,
                "budget": budget,
                "mergeZones": args.merge_zones,
                "pods": count,
                "types": len(types),
                "seconds": round(best, 3),
                "podsPerSecond": round(count / best),
                "nodes": len(result.new_nodes),
                "unschedulable": len(result.unschedulable),
                "price": round(price, 3),
                "ffdPrice": round(baseline.total_price, 3),
                "ffdSeconds": round(ffd_seconds, 3),
                "lowerBound": round(result.lower_bound, 3),
                "ratioToBound": round(price / result.lower_bound, 4)
                if result.lower_bound
                else None,
                "ratioToFfd": round(price / baseline.total_price, 4),
            }
        )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
