"""A simulated Deployment: pods that start, serve and stop, a queue, and per-second accounting.

Each second, the trace's arrivals join the queue and the ready pods serve up to their
capacity. Pods cost from creation until their shutdown ends, serve only once ready. A
second violates the SLO when the queue would take longer than `maxQueueWaitSeconds` to
drain at the ready capacity (or there is a queue and no ready pod).
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field

from ebbflow.sim.scenario import Workload


@dataclass
class Accounting:
    replica_seconds: float = 0.0
    slo_violation_seconds: int = 0
    seconds_at_zero: int = 0
    under_provisioned_seconds: int = 0  # τU: ready capacity below the arrival rate
    max_backlog: float = 0.0
    peak_replicas: int = 0
    scale_events: int = 0
    served: float = 0.0
    arrived: float = 0.0
    pending_pod_seconds: float = 0.0  # pods created but not yet bound to a node
    evictions: int = 0  # pods evicted from a node being disrupted (then replaced)
    pods_killed: int = 0  # pods still on a node when it vanished (then replaced)


@dataclass
class SimulatedDeployment:
    """The pods, queue and accounts of one workload; time is whole seconds since the start."""

    workload: Workload
    rng: random.Random
    desired: int = 0
    starting: list[float] = field(default_factory=list)  # sorted ready times
    ready: int = 0
    stopping: list[float] = field(default_factory=list)  # sorted end-of-shutdown times
    backlog: float = 0.0
    utilization: float = 0.0
    second: int = 0
    accounts: Accounting = field(default_factory=Accounting)
    history: list[tuple[float, int]] = field(default_factory=list)  # (seconds, replicas)
    # with a node layer, new pods wait unbound (`pending`) until the scheduler binds them
    needs_binding: bool = False
    pending: int = 0

    @property
    def pods(self) -> int:
        return len(self.starting) + self.ready + len(self.stopping)

    def scale_to(self, replicas: int, now: float) -> None:
        """The kubelet's work after a scale: start or stop pods at `now` (seconds)."""
        if replicas == self.desired:
            return
        self.accounts.scale_events += 1
        self.history.append((now, replicas))
        pod = self.workload.spec.pod
        while self.desired < replicas:
            if self.needs_binding:
                self.pending += 1
            else:
                self._start(now)
            self.desired += 1
        while self.desired > replicas:
            # Deployments remove unscheduled, then not-yet-ready pods first, then ready ones
            if self.pending:
                self.pending -= 1
            else:
                if self.starting:
                    self.starting.pop()
                else:
                    self.ready -= 1
                bisect.insort(self.stopping, now + pod.shutdown_seconds)
            self.desired -= 1

    def bind(self, now: float) -> None:
        """The scheduler placed one pending pod on a node: it starts now."""
        if self.pending <= 0:
            raise ValueError("no pending pod to bind")
        self.pending -= 1
        self._start(now)

    def lose(self, now: float) -> None:
        """A running pod's node went away: the pod is replaced by a pending one."""
        if self.starting:
            self.starting.pop()
        elif self.ready:
            self.ready -= 1
        else:
            return
        self.accounts.pods_killed += 1
        self.pending += 1

    def evict(self, now: float) -> None:
        """A pod was evicted: it shuts down gracefully, and its ReplicaSet makes a pending one."""
        if self.ready:
            self.ready -= 1
        elif self.starting:
            self.starting.pop()
        else:
            return
        bisect.insort(self.stopping, now + self.workload.spec.pod.shutdown_seconds)
        self.accounts.evictions += 1
        self.pending += 1

    def _start(self, now: float) -> None:
        pod = self.workload.spec.pod
        jitter = self.rng.uniform(0, pod.startup_jitter_seconds)
        bisect.insort(self.starting, now + pod.startup_seconds + jitter)

    def advance(self, until: float) -> None:
        """Account every whole second from the last one up to (not including) `until`."""
        end = math.floor(until)
        if end <= self.second:
            return
        trace = self.workload.trace
        capacity = self.workload.spec.pod.capacity_per_second
        max_wait = self.workload.spec.slo.max_queue_wait_seconds
        offsets, rates = trace.offsets, trace.rates
        index = max(bisect.bisect_right(offsets, self.second) - 1, 0)
        last = len(offsets) - 1
        a = self.accounts
        backlog, ready, busy = self.backlog, self.ready, self.utilization
        starting, stopping = self.starting, self.stopping
        for second in range(self.second, end):
            while index < last and offsets[index + 1] <= second:
                index += 1
            while starting and starting[0] <= second:
                starting.pop(0)
                ready += 1
            while stopping and stopping[0] <= second:
                stopping.pop(0)
            arrivals = rates[index]
            service = ready * capacity
            backlog += arrivals
            served = backlog if backlog < service else service
            backlog -= served
            busy = served / service if service else 0.0
            pods = ready + len(starting) + len(stopping)
            a.replica_seconds += pods
            a.arrived += arrivals
            a.served += served
            if pods == 0:
                a.seconds_at_zero += 1
            if pods > a.peak_replicas:
                a.peak_replicas = pods
            if service < arrivals:
                a.under_provisioned_seconds += 1
            if backlog > 1e-9 and (service == 0 or backlog / service > max_wait):
                a.slo_violation_seconds += 1
            if backlog > a.max_backlog:
                a.max_backlog = backlog
        a.pending_pod_seconds += self.pending * (end - self.second)
        self.backlog, self.ready, self.utilization, self.second = backlog, ready, busy, end

    def arrival_rate(self, now: float) -> float:
        return self.workload.trace.rate_at(now)
