"""Starting the emulated API server: on the caller's loop, or on its own loop in a thread."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml
from aiohttp import web

from kube.apiserver.app import ApiServer
from kube.apiserver.faults import HttpFaults
from kube.memory import MemoryCluster
from kube.port import NAMESPACES, NotFound

T = TypeVar("T")
# The namespaces every cluster starts with; kubectl reports a missing one on a 404.
STANDARD_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class RunningServer:
    """A started server: where it listens, its fault switches, and how to stop it."""

    server: ApiServer
    host: str
    port: int
    _runner: web.AppRunner

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def faults(self) -> HttpFaults:
        return self.server.faults

    async def close(self) -> None:
        """End open watches, then stop listening (idempotent)."""
        self.server.close_watches()
        await self._runner.cleanup()


async def serve(
    cluster: MemoryCluster,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    now: Callable[[], float] = time.time,
    bookmark_interval: float = 1.0,
    namespaces: Iterable[str] = STANDARD_NAMESPACES,
) -> RunningServer:
    """Serve the Kubernetes API over `cluster` on `host`:`port` (0: a free port).

    `namespaces` are created first where missing (objects may still be created in any
    namespace: the in-memory cluster does not require it to exist).
    """
    await ensure_namespaces(cluster, namespaces)
    server = ApiServer(cluster, now=now, bookmark_interval=bookmark_interval)
    runner = web.AppRunner(server.app(), access_log=None, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1]
    return RunningServer(server, host, int(bound), runner)


async def ensure_namespaces(cluster: MemoryCluster, names: Iterable[str]) -> None:
    """Create each namespace in `names` that does not exist yet, Active."""
    for name in names:
        try:
            await cluster.get(NAMESPACES, name)
        except NotFound:
            namespace = {"metadata": {"name": name}, "status": {"phase": "Active"}}
            await cluster.create(NAMESPACES, namespace)


def write_kubeconfig(
    path: str | os.PathLike[str],
    url: str,
    *,
    context: str = "ebbflow-sim",
    namespace: str = "default",
    token: str = "ebbflow-sim",
) -> Path:
    """Write a kubeconfig whose current context talks to `url` (plain http, a dummy token)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": url}}],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": context, "namespace": namespace},
            }
        ],
        "current-context": context,
        "preferences": {},
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target


class ThreadedServer:
    """A server on its own event loop in a daemon thread, for synchronous callers.

    `call` and `run` execute on the server's loop, which owns the cluster and the faults:

        with ThreadedServer(MemoryCluster()) as api:
            subprocess.run(["kubectl", "--server", api.url, "get", "pods"])
            api.call(api.faults.drop_watches)
    """

    def __init__(
        self,
        cluster: MemoryCluster,
        host: str = "127.0.0.1",
        port: int = 0,
        namespaces: Iterable[str] = STANDARD_NAMESPACES,
    ) -> None:
        self.cluster = cluster
        self._host, self._port, self._namespaces = host, port, tuple(namespaces)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._running: RunningServer | None = None

    def start(self) -> ThreadedServer:
        self._thread.start()
        self._running = self.run(
            serve(self.cluster, self._host, self._port, namespaces=self._namespaces)
        )
        return self

    @property
    def running(self) -> RunningServer:
        if self._running is None:
            raise RuntimeError("the server is not started")
        return self._running

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def port(self) -> int:
        return self.running.port

    @property
    def faults(self) -> HttpFaults:
        return self.running.faults

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run `coroutine` on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def call(self, function: Callable[..., T], *args: Any, timeout: float = 30) -> T:
        """Call `function(*args)` on the server's loop and wait for its result."""
        future: Future[T] = Future()

        def invoke() -> None:
            try:
                future.set_result(function(*args))
            except BaseException as error:  # handed to the caller, who re-raises it
                future.set_exception(error)

        self._loop.call_soon_threadsafe(invoke)
        return future.result(timeout)

    def stop(self) -> None:
        if self._running is not None:
            self.run(self._running.close())
            self._running = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._loop.is_running():
            self._loop.close()

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
