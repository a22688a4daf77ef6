"""`ebbflow operator`: flags generated from the settings model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ebbflow.commands.common import fail


def _settings_help() -> str:
    from ebbflow.settings import OperatorSettings

    lines = []
    for name, info in OperatorSettings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        default = "" if info.default_factory else f" (default {info.default!r})"
        lines.append(f"{flag}: {info.description or name}{default}; env EBBFLOW_{name.upper()}")
    return "\n\n".join(lines)


def parse_settings_flags(args: list[str]) -> dict[str, str]:
    """`--lease-duration 20` / `--shards=4` -> {"lease_duration": "20", "shards": "4"}."""
    from ebbflow.settings import OperatorSettings

    values: dict[str, str] = {}
    rest = list(args)
    while rest:
        flag = rest.pop(0)
        if not flag.startswith("--"):
            raise ValueError(f"unexpected argument {flag!r}")
        name, _, value = flag[2:].partition("=")
        field = name.replace("-", "_")
        if field not in OperatorSettings.model_fields:
            raise ValueError(f"unknown option --{name}; see `ebbflow operator --help`")
        if not value:
            if not rest:
                raise ValueError(f"--{name} needs a value")
            value = rest.pop(0)
        values[field] = value
    return values


def operator(
    ctx: typer.Context,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="kubeconfig file (default: $KUBECONFIG, else in-cluster).")
    ] = None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context.")] = None,
) -> None:
    """Run the autoscaler against a Kubernetes cluster until SIGTERM or SIGINT.

    Every setting below is also an EBBFLOW_* environment variable; flags win.
    """
    import asyncio

    from pydantic import ValidationError

    from ebbflow.operator.main import run_operator
    from ebbflow.settings import OperatorSettings

    try:
        settings = OperatorSettings(**parse_settings_flags(list(ctx.args)))  # type: ignore[arg-type]
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            messages = [
                f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
                if e["loc"]
                else e["msg"]
                for e in exc.errors()
            ]
            raise fail("; ".join(messages)) from None
        raise fail(str(exc)) from None
    asyncio.run(run_operator(settings, str(kubeconfig) if kubeconfig else None, context))


def operator_command(app: typer.Typer) -> None:
    """Register `ebbflow operator` (its help lists every setting) on `app`."""
    app.command(
        name="operator",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        epilog=_settings_help(),
    )(operator)
