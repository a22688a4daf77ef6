"""A real Prometheus for integration tests: history backfilled with promtool, then served.

`running_prometheus` writes the series as OpenMetrics, turns them into TSDB blocks with
`promtool tsdb create-blocks-from openmetrics`, starts `prometheus` on a free loopback port
over those blocks, waits for `/-/ready` (bounded), and stops it on exit. Samples are
timestamped up to `end`, so an instant query at `end` (or a few minutes after, within
Prometheus' 5-minute lookback) sees the latest value.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.integration.ports import free_port

READY_SECONDS = 30.0
STEP_SECONDS = 15


@dataclass(frozen=True)
class Series:
    """One time series: `value(age)` gives the sample `age` seconds before the end."""

    name: str
    labels: Mapping[str, str]
    value: Callable[[int], float]


def _sample(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def openmetrics(series: Sequence[Series], end: int, history_seconds: int) -> str:
    """OpenMetrics text of every series, one sample per STEP_SECONDS up to `end`."""
    families: dict[str, list[Series]] = {}
    for s in series:
        families.setdefault(s.name, []).append(s)
    lines: list[str] = []
    for name, members in families.items():
        lines.append(f"# TYPE {name} gauge")  # a family's samples stay together
        for s in members:
            labels = ",".join(f'{k}="{v}"' for k, v in s.labels.items())
            for age in range(history_seconds, -1, -STEP_SECONDS):
                lines.append(f"{name}{{{labels}}} {_sample(s.value(age))} {end - age}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"prometheus not ready after {READY_SECONDS:g}s:\n{log.read_text()}")


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed: apt-get install -y prometheus")
    return path


@contextmanager
def running_prometheus(
    workdir: Path, series: Sequence[Series], end: int, history_seconds: int = 1800
) -> Iterator[str]:
    """A Prometheus serving `series`; yields its base URL (`http://127.0.0.1:PORT`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    source, data = workdir / "history.om", workdir / "data"
    source.write_text(openmetrics(series, end, history_seconds))
    subprocess.run(
        [_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    config = workdir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1h\n")  # nothing to scrape: history only
    log = workdir / "prometheus.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                _binary("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
