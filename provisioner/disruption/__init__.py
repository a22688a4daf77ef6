"""PURE disruption planning: which nodes to remove or replace now, and why (Karpenter v1).

`planner.plan_disruption` is the entry point; `planner.validate` re-checks a command after
the validation period. Nothing here but `executor` reads a clock or talks to a cluster: the
executor (the shell) gathers a `ClusterState`, passes `now`, and applies the `Command`s.
"""
