"""Taints and tolerations, as the kube-scheduler's TaintToleration filter reads them."""

from __future__ import annotations

from collections.abc import Iterable

from provisioner.scheduling.model import Taint, TaintEffect, Toleration


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    """core/v1 `Toleration.ToleratesTaint`: effect, key, then Exists or an equal value."""
    if toleration.effect is not None and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    if toleration.operator == "Exists":
        return True
    # Equal (the default); an empty key with Equal only matches an empty-key taint
    return toleration.key == taint.key and toleration.value == taint.value


def untolerated(tolerations: Iterable[Toleration], taints: Iterable[Taint]) -> Taint | None:
    """The first scheduling taint (NoSchedule, NoExecute) no toleration covers, or None."""
    tols = tuple(tolerations)
    for taint in taints:
        if taint.effect == TaintEffect.PREFER_NO_SCHEDULE:
            continue  # a preference, never blocks scheduling
        if not any(tolerates(t, taint) for t in tols):
            return taint
    return None


def describe(taint: Taint) -> str:
    return f"{taint.key}={taint.value}:{taint.effect}"
