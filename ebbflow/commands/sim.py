"""`ebbflow sim serve`: a local Kubernetes API."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from ebbflow.commands.common import err

app = typer.Typer(help="A local Kubernetes API for trying ebbflow.", no_args_is_help=True)


@app.command()
def serve(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0 picks a free one).")] = 6443,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    kubeconfig_out: Annotated[
        Path | None, typer.Option(help="Write a kubeconfig for kubectl and the operator here.")
    ] = None,
) -> None:
    """Serve the Kubernetes REST API over an in-memory cluster until Ctrl-C.

    kubectl (`kubectl --kubeconfig F apply -f ...`) and `ebbflow operator --kubeconfig F`
    talk to it as to a real API server. Nothing is kept after it stops.
    """
    import asyncio
    import time

    from kube.apiserver.serve import serve as serve_api
    from kube.apiserver.serve import write_kubeconfig
    from kube.memory import MemoryCluster

    async def run() -> None:
        running = await serve_api(MemoryCluster(now=time.time), host, port)
        try:
            err.print(f"Kubernetes API at {running.url}", highlight=False)
            if kubeconfig_out is not None:
                write_kubeconfig(kubeconfig_out, running.url)
                err.print(f"kubeconfig written to {kubeconfig_out}", highlight=False)
            await asyncio.Event().wait()
        finally:
            await running.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
