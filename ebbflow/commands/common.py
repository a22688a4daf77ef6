"""What every command shares: the consoles, the output switch, failing with a message."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)


class Output(StrEnum):
    table = "table"
    json = "json"


def fail(message: str) -> typer.Exit:
    """Print `message` as an error and return the Exit (code 1) to raise."""
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
