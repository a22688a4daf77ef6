"""The packing strategy interface: a group problem in, nodes out."""

from __future__ import annotations

from collections.abc import Callable

from provisioner.scheduling.groups import GroupProblem, PackedNode

# (problem, deadline on time.perf_counter() or None) -> nodes holding every pod of the problem
Strategy = Callable[[GroupProblem, float | None], list[PackedNode]]
