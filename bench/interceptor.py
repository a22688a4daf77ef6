"""The interceptor's cost: throughput and added latency against direct and against nginx.

In one run, with the same load generator (wrk, Debian's, in its own process) and the same
upstream (an aiohttp app on uvloop, in its own process):
- direct: wrk -> upstream;
- interceptor: wrk -> `ebbflow interceptor` (its own process, uvloop) -> upstream;
- nginx: wrk -> Debian's nginx (one worker, upstream keepalive) -> upstream.
Added latency is a proxy's p50/p99 minus direct's; requests per CPU-second divide the
requests a proxy served by the CPU time its processes used (from /proc).

Then the push reaction: the HTTP scaling controller and the interceptor in one process
over the in-memory cluster; from the first request at zero to the /scale patch it causes,
over many trials (p50/p99). Prints JSON.
Run: .venv/bin/python bench/interceptor.py [--seconds 5] [--connections 32] [--trials 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

HOST = "web.example"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_port(port: int, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {seconds}s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and its children (nginx's worker), from /proc."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    pids.append(int(entry.name))
    total = 0
    for p in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


@contextlib.contextmanager
def process(args: list[str], port: int, **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)
    try:
        try:
            wait_port(port)
        except RuntimeError:
            proc.kill()
            raise RuntimeError(f"{args[0]} did not start: {proc.stderr.read().decode()}") from None
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


UPSTREAM = """
import sys, uvloop
from aiohttp import web
async def hello(request):
    return web.Response(text="hello, world\\n")
app = web.Application()
app.router.add_get("/{tail:.*}", hello)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None,
            loop=uvloop.new_event_loop())
"""

NGINX = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream web {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://web;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""

MANIFEST = """
apiVersion: http.keda.sh/v1alpha1
kind: HTTPScaledObject
metadata: {{name: web, namespace: default}}
spec:
  hosts: [{host}]
  scaleTargetRef: {{name: web, service: web, port: 80}}
  scalingMetric: {{requestRate: {{targetValue: 100}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec: {{ports: [{{name: http, port: 80, targetPort: http}}]}}
---
apiVersion: v1
kind: Endpoints
metadata: {{name: web, namespace: default}}
subsets:
- addresses: [{{ip: 127.0.0.1}}]
  ports: [{{name: http, port: {upstream}}}]
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(port: int, seconds: float, connections: int) -> dict[str, float]:
    """Run wrk (one thread) against the port; requests, rate and latency percentiles."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    command += ["-H", f"Host: {HOST}", f"http://127.0.0.1:{port}/"]
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    result = {
        "requests": requests,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),  # type: ignore[union-attr]
        "p50Ms": _ms(re.search(r"50%\s+(\S+)", text).group(1)),  # type: ignore[union-attr]
        "p99Ms": _ms(re.search(r"99%\s+(\S+)", text).group(1)),  # type: ignore[union-attr]
        "errors": int(errors.group(1)) if errors else 0,
    }
    return result


def measure(pid: int | None, port: int, seconds: float, connections: int) -> dict[str, float]:
    wrk(port, 1, connections)  # warm up: connections, pools, caches
    before = cpu_seconds(pid) if pid else 0.0
    result = wrk(port, seconds, connections)
    if pid:
        used = cpu_seconds(pid) - before
        result["cpuSeconds"] = round(used, 2)
        result["requestsPerCpuSecond"] = round(result["requests"] / used) if used else 0
    return result


def throughput(seconds: float, connections: int) -> dict[str, Any]:
    ebbflow = Path(sys.executable).parent / "ebbflow"
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    upstream, proxy, admin, plain = free_port(), free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp, "routes.yaml")
        manifest.write_text(MANIFEST.format(host=HOST, upstream=upstream))
        conf = Path(tmp, "nginx.conf")
        conf.write_text(NGINX.format(tmp=tmp, upstream=upstream, port=plain))
        interceptor = [str(ebbflow), "interceptor", "-f", str(manifest), "--host", "127.0.0.1"]
        interceptor += ["--port", str(proxy), "--admin-port", str(admin)]
        with (
            process([sys.executable, "-c", UPSTREAM, str(upstream)], upstream),
            process(interceptor, proxy, cwd=ROOT) as ebb,
            process([nginx, "-c", str(conf), "-p", tmp], plain) as ngx,
        ):
            modes = {
                "direct": measure(None, upstream, seconds, connections),
                "interceptor": measure(ebb.pid, proxy, seconds, connections),
                "nginx": measure(ngx.pid, plain, seconds, connections),
            }
    for name in ("interceptor", "nginx"):
        modes[name]["addedP50Ms"] = round(modes[name]["p50Ms"] - modes["direct"]["p50Ms"], 3)
        modes[name]["addedP99Ms"] = round(modes[name]["p99Ms"] - modes["direct"]["p99Ms"], 3)
    ours, theirs = modes["interceptor"], modes["nginx"]
    return {
        "modes": modes,
        "interceptorToNginx": {
            "rps": round(ours["rps"] / theirs["rps"], 3),
            "requestsPerCpuSecond": round(
                ours["requestsPerCpuSecond"] / theirs["requestsPerCpuSecond"], 3
            ),
        },
    }


async def push_reaction(trials: int) -> dict[str, Any]:
    """First request at zero -> the /scale patch, through the real controller and proxy."""
    import aiohttp

    from kube.memory import MemoryCluster
    from kube.port import DEPLOYMENTS, ENDPOINTS, HTTP_SCALED_OBJECTS, SERVICES
    from scaler.clock import RealClock
    from scaler.http_scaling import HTTPScalingController, RouteScalers
    from scaler.interceptor.server import InterceptorService

    cluster = MemoryCluster(now=time.time)
    service = InterceptorService(cluster, RealClock())
    controller = HTTPScalingController(
        cluster, RealClock(), RouteScalers(service.interceptor.counts)
    )
    service.interceptor.activate = lambda key: controller.wake(*key)
    scaled: dict[str, asyncio.Future[float]] = {}

    async def observe() -> None:
        async for event in cluster.watch(DEPLOYMENTS, "default"):
            future = scaled.get(event.object["metadata"]["name"])
            if future and not future.done() and event.object["spec"]["replicas"] >= 1:
                future.set_result(time.perf_counter())

    tasks = [asyncio.create_task(controller.run()), asyncio.create_task(observe())]
    await service.start()
    delays: list[float] = []
    async with aiohttp.ClientSession() as client:
        for i in range(trials):
            name = f"web-{i}"
            meta = {"name": name, "namespace": "default"}
            deployment = {"spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}}}}
            await cluster.create(DEPLOYMENTS, {"metadata": meta, **deployment})
            await cluster.create(SERVICES, {"metadata": meta, "spec": {"ports": [{"port": 80}]}})
            await cluster.create(ENDPOINTS, {"metadata": meta})
            polls = controller.stats.polls
            spec = {
                "hosts": [f"{name}.example"],
                "scaleTargetRef": {"name": name, "service": name, "port": 80},
                "scalingMetric": {"concurrency": {"targetValue": 10}},
            }
            hso = {"apiVersion": "ebbflow.io/v1alpha1", "kind": "HTTPScaledObject"}
            await cluster.create(HTTP_SCALED_OBJECTS, {**hso, "metadata": meta, "spec": spec})
            while controller.stats.polls == polls or name not in {  # noqa: ASYNC110 - a bench
                k[1] for k in service.watcher.routes
            }:
                await asyncio.sleep(0.001)  # the object's first poll (at zero, idle) is done
            scaled[name] = asyncio.get_running_loop().create_future()
            started = time.perf_counter()
            url = f"http://127.0.0.1:{service.proxy_port}/"
            request = asyncio.ensure_future(client.get(url, headers={"Host": f"{name}.example"}))
            delays.append((await asyncio.wait_for(scaled[name], 10) - started) * 1000)
            request.cancel()
            await asyncio.gather(request, return_exceptions=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await service.close()
    cluster.close()
    delays.sort()
    return {
        "trials": trials,
        "p50Ms": round(delays[len(delays) // 2], 3),
        "p99Ms": round(delays[min(len(delays) - 1, int(len(delays) * 0.99))], 3),
        "maxMs": round(delays[-1], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    import uvloop

    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load": {"tool": "wrk -t1", "connections": args.connections, "seconds": args.seconds},
    }
    result.update(throughput(args.seconds, args.connections))
    result["pushReaction"] = uvloop.run(push_reaction(args.trials))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
