"""The disruption controller: plans with the pure planner, validates, and executes commands.

It runs beside the ProvisioningController and reads its informers (pods, nodes, NodeClaims,
NodePools, PodDisruptionBudgets, the cost ledger). Every poll (10 s, Karpenter's) it builds a
`ClusterState` and calls `plan_disruption`. A consolidation or emptiness command waits the
validation period (15 s) and is re-checked with `validate` on a fresh state; then, as
Karpenter v1 does: taint the candidates karpenter.sh/disrupted:NoSchedule, launch the
replacements through the provisioner's claim path and wait until their nodes are Ready
(abandon, untaint and clean up if one fails), evict the pods through the Eviction API in
PDB-respecting waves (retrying 429s after their Retry-After) until they are gone or the
claim's terminationGracePeriod ends (the rest are deleted), then terminate the instance,
Node and NodeClaim. Spot interruption notices from the cloud are handled at once: the node
is tainted and drained, its pods go pending and the provisioner launches their new nodes
within its batch window, well before the two-minute deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from kube.port import JSON, NODES, PODS, NotFound, TooManyRequests
from provisioner.cloud.port import InterruptionNotice
from provisioner.controller import ProvisioningController, run_loops
from provisioner.disruption.candidates import consolidatable_at, is_reschedulable
from provisioner.disruption.churn import INTERRUPTION, Churn, Removal, churn
from provisioner.disruption.command import Command
from provisioner.disruption.inputs import DISRUPTED_TAINT, pdb_from_manifest
from provisioner.disruption.pdb import PdbState, eviction_waves
from provisioner.disruption.planner import plan_disruption, record_replaced, validate
from provisioner.disruption.pools import (
    POOL_HASH_ANNOTATION,
    POOL_HASH_VERSION,
    POOL_HASH_VERSION_ANNOTATION,
    pool_policy,
)
from provisioner.disruption.state import (
    DEFAULT_OPTIONS,
    DO_NOT_DISRUPT,
    ClusterState,
    ConsolidationPolicy,
    DisruptionOptions,
    NodeFacts,
    PoolPolicy,
)
from provisioner.durations import go_duration_seconds
from provisioner.manifests import bound_node, is_pending, node_is_ready
from provisioner.scheduling.model import INSTANCE_TYPE, InstanceType, Pod, Resources
from provisioner.scheduling.pods import pod_from_manifest
from provisioner.scheduling.requirements import reqs_of

log = logging.getLogger("ebbflow.disruption")


@dataclass(frozen=True)
class ExecutorOptions:
    poll_seconds: float = 10.0  # Karpenter's disruption controller polls every 10 s
    # False: every NodePool is treated as WhenEmpty (empty nodes go; none is consolidated)
    consolidation: bool = True
    replacement_timeout_seconds: float = 600.0  # a replacement not Ready by then: abandon
    drain_poll_seconds: float = 1.0  # re-check a draining node's pods
    eviction_retry_seconds: float = 5.0  # after a 429 without Retry-After (kubectl drain's 5 s)
    # an unchanged cluster is re-planned when a node's time comes or a budget window turns,
    # and at least this often (offerings cached as unavailable come back meanwhile)
    full_round_seconds: float = 3600.0
    planner: DisruptionOptions = DEFAULT_OPTIONS


@dataclass
class DisruptionStats:
    rounds: int = 0
    commands: dict[str, int] = field(default_factory=dict)  # method -> executed commands
    nodes: dict[str, int] = field(default_factory=dict)  # method -> nodes removed
    abandoned: int = 0  # failed validation after the validation period
    replacement_failures: int = 0
    evictions: int = 0
    evictions_by_method: dict[str, int] = field(default_factory=dict)
    eviction_retries: int = 0  # 429: a PodDisruptionBudget said not yet
    forced_deletions: int = 0  # pods still there when terminationGracePeriod ended
    interruptions: int = 0
    errors: int = 0


class DisruptionController:
    def __init__(
        self,
        provisioner: ProvisioningController,
        options: ExecutorOptions | None = None,
        expected: Callable[[], Sequence[Pod]] | None = None,
    ) -> None:
        """`expected`: the pods forecasts expect within the consolidation horizon that do not
        exist yet (`ClusterState.expected_pods`); None: consolidation sees only today's pods."""
        self.provisioner = provisioner
        self.expected = expected
        self.cluster = provisioner.cluster
        self.clock = provisioner.clock
        self.options = options or ExecutorOptions()
        self.stats = DisruptionStats()
        self.removals: list[Removal] = []
        self.recently_replaced: dict[tuple[str, str], float] = {}
        self._disrupting: set[str] = set()  # candidates of commands being executed
        self._protected: set[str] = set()  # replacements whose command is still running
        self._seen_generation = -1
        self._next_round = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    # --- loops ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll, validate and execute; handle interruption notices; until cancelled."""
        await run_loops([self._polling(), self._notices()], self._tasks)

    async def _polling(self) -> None:
        while True:
            await self.clock.sleep(self.options.poll_seconds)
            try:
                await self.disrupt_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the guard: a failed round is retried at the next poll
                self.stats.errors += 1
                log.warning("disruption round failed: %s: %s", type(exc).__name__, exc)

    async def _notices(self) -> None:
        queue: asyncio.Queue[InterruptionNotice] | None = getattr(
            self.provisioner.cloud, "notices", None
        )
        if queue is None:
            return  # a provider without interruption notices
        while True:
            notice = await queue.get()
            self._spawn(self.interrupted(notice))

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(self._guarded(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, coro: Any) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.stats.errors += 1
            log.warning("disruption failed: %s: %s", type(exc).__name__, exc)

    # --- planning ------------------------------------------------------------------------

    async def disrupt_once(self) -> list[Command]:
        """One round: plan, validate what needs it, and start executing; the commands run."""
        now = self.clock.now()
        generation = self.provisioner.generation
        if generation == self._seen_generation and now < self._next_round:
            return []  # nothing changed and no node's time has come (Karpenter: consolidated)
        self.stats.rounds += 1
        state = self.cluster_state()
        commands = plan_disruption(state, now, self.options.planner)
        self._seen_generation = generation
        self._next_round = min(
            now + self.options.full_round_seconds, _next_time_trigger(state, now)
        )
        started = []
        for command in commands:
            if command.needs_validation:
                await self.clock.sleep(self.options.planner.validation_period)
                fresh = self.cluster_state()
                why = validate(command, fresh, self.clock.now(), self.options.planner)
                if why is not None:
                    self.stats.abandoned += 1
                    log.info("abandoning %s of %s: %s", command.method, command.nodes, why)
                    continue
            self._disrupting.update(command.nodes)
            self._spawn(self.execute(command))
            started.append(command)
        return started

    def _policy(self, name: str) -> PoolPolicy:
        pool = self.provisioner.pools[name]
        policy = pool_policy(pool, self.provisioner.pool_usage().get(name, Resources()))
        if not self.options.consolidation:
            policy = replace(policy, consolidation_policy=ConsolidationPolicy.WHEN_EMPTY)
        return policy

    def cluster_state(self) -> ClusterState:
        """The planner's view of the provisioner's informers, now."""
        p = self.provisioner
        nodes = p.existing_nodes(include_disrupting=True)
        nominated = {
            claim for key, claim in p.nominated.items() if key in p.pods and is_pending(p.pods[key])
        }
        facts: dict[str, NodeFacts] = {}
        priced = []
        for node in nodes:
            found = self._facts(node.name, node.name in nominated)
            if found is not None:
                facts[node.name] = found
                node = replace(node, price=found.price)
            priced.append(node)
        pools = {name: self._policy(name) for name in p.pools}
        return ClusterState(
            nodes=tuple(priced),
            facts=facts,
            pools=pools,
            instance_types=launchable_types(p.available_types(), pools, facts),
            pdbs=self._pdbs(),
            unhealthy_pods=self._unhealthy(),
            pending_pods=tuple(p.pending_pods()),
            expected_pods=tuple(self.expected()) if self.expected is not None else (),
            recently_replaced=dict(self.recently_replaced),
        )

    def _facts(self, name: str, nominated: bool) -> NodeFacts | None:
        """A registered node we launched, as the planner sees it; None for the others."""
        p = self.provisioner
        record, claim, node = p.ledger.get(name), p.claims.get(name), p.nodes.get(name)
        if record is None or claim is None or node is None or record.terminated_at is not None:
            return None
        spec = claim.get("spec", {})
        annotations = claim.get("metadata", {}).get("annotations") or {}
        ours = annotations.get(POOL_HASH_VERSION_ANNOTATION) == POOL_HASH_VERSION
        grace = spec.get("terminationGracePeriod")
        node_annotations = node.get("metadata", {}).get("annotations") or {}
        return NodeFacts(
            claim=name,
            pool=record.pool,
            instance_type=record.instance_type,
            capacity_type=record.capacity_type,
            zone=record.zone,
            price=record.price,
            created_at=record.launched_at,
            initialized=name in p.initialized_at,
            initialized_at=p.initialized_at.get(name),
            last_pod_event_at=p.last_pod_event.get(name),
            do_not_disrupt=node_annotations.get(DO_NOT_DISRUPT) == "true",
            expire_after=go_duration_seconds(spec.get("expireAfter") or "Never"),
            termination_grace_period=go_duration_seconds(grace) if grace else None,
            pool_hash=annotations.get(POOL_HASH_ANNOTATION) if ours else None,
            marked_for_deletion=name in self._disrupting or p.is_disrupting(name),
            nominated=nominated or name in self._protected,
        )

    def _unhealthy(self) -> frozenset[str]:
        """Bound pods that are not Running (PDBs do not count them as healthy)."""
        return frozenset(
            key
            for key, obj in self.provisioner.pods.items()
            if bound_node(obj) and obj.get("status", {}).get("phase") != "Running"
        )

    def _pdbs(self) -> tuple[PdbState, ...]:
        out = []
        for key, obj in self.provisioner.pdbs.items():
            try:
                out.append(pdb_from_manifest(obj))
            except ValueError as exc:
                log.warning("PodDisruptionBudget %s is invalid and ignored: %s", key, exc)
        return tuple(out)

    # --- execution -----------------------------------------------------------------------

    async def execute(self, command: Command) -> bool:
        """Carry out one command; False when it was abandoned (a replacement failed)."""
        names = command.nodes
        self._disrupting.update(names)
        launched: list[str] = []
        try:
            for name in names:
                await self._taint(name, True)
            for new in command.replacements:
                launched.append(await self.provisioner.create_claim(new, nominate=False))
            self._protected.update(launched)
            if launched and not await self._await_ready(launched):
                self.stats.replacement_failures += 1
                log.info("abandoning %s of %s: a replacement failed", command.method, names)
                for name in launched:
                    await self.provisioner.terminate(name)
                for name in names:
                    await self._taint(name, False)
                return False
            self.recently_replaced = record_replaced(
                self.recently_replaced, command, self.clock.now()
            )
            method = command.method.value
            self.stats.commands[method] = self.stats.commands.get(method, 0) + 1
            together = len(names)
            await asyncio.gather(
                *(
                    self._drain_and_remove(name, method, tuple(launched), together=together)
                    for name in names
                )
            )
            return True
        finally:
            self._disrupting.difference_update(names)
            self._protected.difference_update(launched)

    async def interrupted(self, notice: InterruptionNotice) -> None:
        """A spot instance is reclaimed at `notice.terminates_at`: drain it now, and go."""
        p = self.provisioner
        name = next(
            (
                n
                for n, claim in p.claims.items()
                if claim.get("status", {}).get("providerID") == notice.provider_id
            ),
            None,
        )
        if name is None or name in self._disrupting:
            return
        self.stats.interruptions += 1
        self._disrupting.add(name)
        try:
            await self._taint(name, True)
            await self._drain_and_remove(name, INTERRUPTION, (), notice.terminates_at)
        finally:
            self._disrupting.discard(name)

    async def _await_ready(self, claims: list[str]) -> bool:
        p = self.provisioner
        deadline = self.clock.now() + self.options.replacement_timeout_seconds
        while self.clock.now() < deadline:
            if any(name not in p.claims for name in claims):
                return False  # the launch failed (insufficient capacity) and was cleaned up
            if all(name in p.nodes and node_is_ready(p.nodes[name]) for name in claims):
                return True
            await self.clock.sleep(self.options.drain_poll_seconds)
        return False

    async def _taint(self, name: str, on: bool) -> None:
        node = self.provisioner.nodes.get(name)
        if node is None:
            return
        taints = [
            t for t in node.get("spec", {}).get("taints") or () if t.get("key") != DISRUPTED_TAINT
        ]
        if on:
            taints.append({"key": DISRUPTED_TAINT, "effect": "NoSchedule"})
        with contextlib.suppress(NotFound):
            self.provisioner.nodes[name] = await self.cluster.patch(
                NODES, name, {"spec": {"taints": taints}}
            )

    async def _drain_and_remove(
        self,
        name: str,
        method: str,
        replaced_by: tuple[str, ...],
        deadline: float | None = None,
        together: int = 1,
    ) -> None:
        claim = self.provisioner.claims.get(name, {})
        grace = claim.get("spec", {}).get("terminationGracePeriod")
        if grace and deadline is None:
            deadline = self.clock.now() + (go_duration_seconds(grace) or 0.0)
        await self.drain(name, deadline, method)
        self._record_removal(name, method, replaced_by, together)
        await self.provisioner.terminate(name)

    async def drain(self, name: str, deadline: float | None, method: str = "") -> None:
        """Evict the node's pods in PDB-respecting waves until none is left; at `deadline`
        (terminationGracePeriod, or an interruption's end) delete whatever remains."""
        while True:
            pods = self._pods_on(name)
            if not pods:
                return
            now = self.clock.now()
            if deadline is not None and now >= deadline:
                for obj in pods:
                    meta = obj["metadata"]
                    with contextlib.suppress(NotFound):
                        await self.cluster.delete(PODS, meta["name"], meta.get("namespace"))
                        self.stats.forced_deletions += 1
                return
            wait = self.options.drain_poll_seconds
            for obj in self._first_wave(pods):
                meta = obj["metadata"]
                try:
                    await self.cluster.evict(meta["name"], meta.get("namespace", "default"))
                    self.stats.evictions += 1
                    by = self.stats.evictions_by_method
                    by[method] = by.get(method, 0) + 1
                except TooManyRequests as exc:
                    self.stats.eviction_retries += 1
                    retry = exc.retry_after or self.options.eviction_retry_seconds
                    wait = max(wait, retry)
                except NotFound:
                    pass
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - now))
            await self.clock.sleep(wait)

    def _pods_on(self, name: str) -> list[JSON]:
        """The pods to evict from a node: live, not being deleted, not DaemonSet or static."""
        out = []
        for obj in self.provisioner.pods.values():
            if bound_node(obj) != name or obj.get("metadata", {}).get("deletionTimestamp"):
                continue
            with contextlib.suppress(ValueError):
                if not is_reschedulable(pod_from_manifest(obj)):
                    continue
            out.append(obj)
        return out

    def _first_wave(self, pods: list[JSON]) -> list[JSON]:
        """The pods whose eviction no PDB forbids now (the API server has the last word)."""
        pdbs = self._pdbs()
        if not pdbs:
            return pods
        parsed: dict[str, Pod] = {}
        unparsed: list[JSON] = []
        for obj in pods:
            try:
                parsed[obj["metadata"]["name"]] = pod_from_manifest(obj)
            except ValueError:
                unparsed.append(obj)
        everyone = []
        for obj in self.provisioner.pods.values():
            with contextlib.suppress(ValueError):
                everyone.append(pod_from_manifest(obj))
        waves = eviction_waves(list(parsed.values()), pdbs, everyone, self._unhealthy())
        first = {p.name for p in waves[0]} if waves else set()
        # a wave no PDB allows still gets one try: its 429 carries the retry time
        if not first and waves:
            first = {waves[0][0].name}
        return [obj for obj in pods if obj["metadata"]["name"] in first] + unparsed

    def _record_removal(
        self, name: str, method: str, replaced_by: tuple[str, ...], together: int
    ) -> None:
        record = self.provisioner.ledger.get(name)
        if record is None:
            return
        types = tuple(
            self.provisioner.ledger[r].instance_type
            for r in replaced_by
            if r in self.provisioner.ledger
        )
        self.removals.append(
            Removal(
                at=self.clock.now(),
                node=name,
                pool=record.pool,
                instance_type=record.instance_type,
                capacity_type=record.capacity_type,
                method=method,
                created_at=record.launched_at,
                replaced_by=replaced_by,
                replacement_types=types,
                command_nodes=together,
            )
        )
        self.stats.nodes[method] = self.stats.nodes.get(method, 0) + 1

    # --- figures -------------------------------------------------------------------------

    def churn(self) -> Churn:
        """The churn figures against each pool's bound (consolidateAfter + validation)."""
        bounds = {}
        for name in self.provisioner.pools:
            after = self._policy(name).consolidate_after
            if after is not None:
                bounds[name] = after + self.options.planner.validation_period
        return churn(self.removals, bounds)


def launchable_types(
    types: Sequence[InstanceType], pools: Mapping[str, PoolPolicy], facts: Mapping[str, NodeFacts]
) -> tuple[InstanceType, ...]:
    """The types some pool may launch, and those of the managed nodes: the rest can play no
    part in a disruption plan, and leaving them out makes each simulation cheaper."""
    keep = frozenset(f.instance_type for f in facts.values())
    key = (id(types), keep, tuple((n, p.template.requirements) for n, p in sorted(pools.items())))
    cached = _LAUNCHABLE.get(key)
    if cached is not None and cached[0] is types:
        return cached[1]  # the same tuple again: the packer reuses its columns for it
    allowed = [reqs_of(pool.template.requirements) for pool in pools.values()]
    out = []
    for t in types:
        labels = {**t.labels, INSTANCE_TYPE: t.name}
        if t.name in keep or any(
            all(req.admits_label(labels[key]) for key, req in reqs.items() if key in labels)
            for reqs in allowed
        ):
            out.append(t)
    result = tuple(out)
    if len(_LAUNCHABLE) > 32:
        _LAUNCHABLE.clear()
    _LAUNCHABLE[key] = (types, result)
    return result


_LAUNCHABLE: dict[object, tuple[Sequence[InstanceType], tuple[InstanceType, ...]]] = {}


def _next_time_trigger(state: ClusterState, now: float) -> float:
    """The next moment planning may change with nothing else changing: a node becomes
    Consolidatable or expires, or a scheduled budget window opens or closes."""
    later = [float("inf")]
    for facts in state.facts.values():
        pool = state.pools.get(facts.pool)
        at = consolidatable_at(facts, pool) if pool is not None else None
        if at is not None:
            later.append(at)
        if facts.expire_after is not None:
            later.append(facts.created_at + facts.expire_after)
    for pool in state.pools.values():
        for rule in pool.budgets:
            if rule.schedule is None or rule.duration is None:
                continue
            later.append(croniter(rule.schedule, datetime.fromtimestamp(now, UTC)).get_next(float))
            start = datetime.fromtimestamp(now - rule.duration, UTC)
            opened = croniter(rule.schedule, start).get_next(float)
            if opened <= now:
                later.append(opened + rule.duration)
    return min(t for t in later if t > now)
