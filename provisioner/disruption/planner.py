"""The disruption planner: what to disrupt now, why, and whether a decision still holds.

Order (Karpenter v1): forceful expiration first (every expired node, no budget), then the
graceful methods Drift, Emptiness, multi-node and single-node consolidation; the first that
yields a command wins the round, within its NodePools' budgets for its reason.

The executor's loop, every 10 s or so:
1. `commands = plan_disruption(state, now)`;
2. for a command with `needs_validation`, wait `options.validation_period` (15 s) and call
   `validate(command, state_at_that_moment, later)`: a string says why to abandon it;
3. taint the candidates `karpenter.sh/disrupted:NoSchedule`, launch `replacements`, wait
   for them to be Ready, then drain (`pdb.eviction_waves`) and delete the candidates;
4. after a consolidation, keep `record_replaced(...)` as the next state's
   `recently_replaced` (the churn guard).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from provisioner.disruption.candidates import Candidate, build_candidates
from provisioner.disruption.command import Command, Method, MethodName, Round
from provisioner.disruption.consolidation import (
    MultiNodeConsolidation,
    SingleNodeConsolidation,
    compute_consolidation,
)
from provisioner.disruption.expiration import expired_commands, expired_names
from provisioner.disruption.methods import Drift, Emptiness
from provisioner.disruption.simulation import simulate
from provisioner.disruption.state import (
    DEFAULT_OPTIONS,
    ClusterState,
    ConsolidationPolicy,
    DisruptionOptions,
)


@dataclass(frozen=True, slots=True)
class DisruptionPlan:
    commands: tuple[Command, ...]
    not_candidates: Mapping[str, str]  # node -> why nothing disrupts it now, in words


def graceful_methods(round_: Round) -> list[Method]:
    return [
        Drift(round_),
        Emptiness(round_),
        MultiNodeConsolidation(round_),
        SingleNodeConsolidation(round_),
    ]


def method_for(name: MethodName, round_: Round) -> Method | None:
    return next((m for m in graceful_methods(round_) if m.name == name), None)


def _without_expired(state: ClusterState, commands: list[Command]) -> ClusterState:
    gone = expired_names(commands)
    if not gone:
        return state
    facts = {
        name: replace(f, marked_for_deletion=True) if name in gone else f
        for name, f in state.facts.items()
    }
    return replace(state, facts=facts)


def _graceful_command(round_: Round) -> Command | None:
    for method in graceful_methods(round_):
        candidates, _ = build_candidates(round_.state, round_.now, round_.options, method.eventual)
        wanted = [c for c in candidates if method.should_disrupt(c)]
        if not wanted:
            continue
        cmd = method.compute_command(wanted, round_.budgets(method.reason))
        if cmd is not None:
            return cmd
    return None


def plan_disruption(
    state: ClusterState, now: float, options: DisruptionOptions = DEFAULT_OPTIONS
) -> list[Command]:
    """The commands to execute now: forceful expirations, then at most one graceful command."""
    commands = expired_commands(state, now, options)
    round_ = Round(_without_expired(state, commands), now, options)
    graceful = _graceful_command(round_)
    return commands + ([graceful] if graceful is not None else [])


def explain(
    state: ClusterState, now: float, options: DisruptionOptions = DEFAULT_OPTIONS
) -> DisruptionPlan:
    """`plan_disruption` plus, for every other node, why it is left alone (the dry run)."""
    commands = expired_commands(state, now, options)
    round_ = Round(_without_expired(state, commands), now, options)
    graceful = _graceful_command(round_)
    if graceful is not None:
        commands.append(graceful)
    chosen = expired_names(commands)
    candidates, reasons = build_candidates(round_.state, now, options)
    for name in expired_names(commands):
        reasons.pop(name, None)
    for candidate in candidates:
        if candidate.name not in chosen:
            reasons[candidate.name] = _why_left_alone(round_, candidate, graceful)
    return DisruptionPlan(tuple(commands), dict(sorted(reasons.items())))


def _why_left_alone(round_: Round, candidate: Candidate, graceful: Command | None) -> str:
    if candidate.name in round_.rejected:
        return round_.rejected[candidate.name]
    methods = graceful_methods(round_)
    drift, emptiness, consolidation = methods[0], methods[1], methods[3]
    if drift.should_disrupt(candidate) or emptiness.should_disrupt(candidate):
        return "waits for a later round (one graceful command per round)"
    why = consolidation.why_not(candidate)
    if why is not None:
        policy = candidate.pool.consolidation_policy
        pods = len(candidate.reschedulable_pods)
        busy = policy is ConsolidationPolicy.WHEN_EMPTY and pods
        return f"{why} and {pods} pods run on it" if busy else why
    cmd, why, _ = compute_consolidation(round_, MethodName.SINGLE_NODE, [candidate])
    if cmd is None:
        return why
    first = f"{graceful.method.value} goes first" if graceful is not None else "not chosen"
    return f"{first}; next round may: {cmd.explanation}"


def validate(
    command: Command,
    state: ClusterState,
    now: float,
    options: DisruptionOptions = DEFAULT_OPTIONS,
) -> str | None:
    """Re-check a command after the validation period: None if it holds, else why not.

    Karpenter's validation: every candidate must still be a candidate of the same method,
    the budgets must still allow them, and (consolidation) a fresh simulation must still need
    exactly the replacements planned, with the planned types among its options.
    """
    if command.forceful:
        return None
    waited = now - command.decided_at
    if command.needs_validation and waited < options.validation_period:
        return f"validation period not over ({options.validation_period - waited:.0f}s left)"
    round_ = Round(state, now, options)
    method = method_for(command.method, round_)
    if method is None:
        return f"unknown method {command.method}"
    current, reasons = build_candidates(state, now, options, method.eventual)
    by_name = {c.name: c for c in current}
    fresh: list[Candidate] = []
    for old in command.candidates:
        cur = by_name.get(old.name)
        if cur is None:
            return f"{old.name} is no longer a candidate: {reasons.get(old.name, 'gone')}"
        if cur.facts.claim != old.facts.claim:
            return f"{old.name} is now another NodeClaim"
        why = method.why_not(cur)
        if why is not None:
            return f"{old.name} is no longer a {method.name.value} candidate: {why}"
        fresh.append(cur)
    budgets = round_.budgets(method.reason)
    for cur in fresh:
        if budgets.get(cur.pool.name, 0) <= 0:
            return f"{cur.name}: {round_.why_no_budget(cur.pool.name, method.reason)}"
        budgets[cur.pool.name] -= 1
    if command.method in (MethodName.MULTI_NODE, MethodName.SINGLE_NODE):
        return _still_consolidates(command, round_, fresh)
    if command.method is MethodName.DRIFT:
        sim = simulate(state, fresh, options, round_.base)
        return None if sim.all_placed else sim.why_not_placed()
    return None


def _still_consolidates(command: Command, round_: Round, fresh: list[Candidate]) -> str | None:
    sim = simulate(round_.state, fresh, round_.options, round_.base)
    if not sim.all_placed:
        return sim.why_not_placed()
    new_nodes = sim.plan.new_nodes
    if len(new_nodes) > 1:
        return f"the pods would now need {len(new_nodes)} new nodes"
    if not new_nodes:
        if command.replacements:
            return "the pods now fit on existing nodes: a better consolidation exists"
        return None
    if not command.replacements:
        return "the pods no longer fit on existing nodes"
    planned = command.replacements[0]
    now_fit = {new_nodes[0].instance_type, *new_nodes[0].alternatives}
    missing = [t for t in (planned.instance_type, *planned.alternatives) if t not in now_fit]
    if missing:
        return f"replacement types {', '.join(missing[:3])} no longer hold the pods"
    return None


def record_replaced(
    recently: Mapping[tuple[str, str], float], command: Command, now: float
) -> dict[tuple[str, str], float]:
    """The churn guard's memory after executing `command` (consolidation only)."""
    out = dict(recently)
    if command.method in (MethodName.MULTI_NODE, MethodName.SINGLE_NODE):
        for c in command.candidates:
            out[(c.pool.name, c.instance_type)] = now
    return out
