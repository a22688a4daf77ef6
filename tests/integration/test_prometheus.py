"""The prometheus trigger against a real Prometheus (backfilled history) and, for what a
server cannot show us (the headers and credentials we send, TLS), a small aiohttp server."""

from __future__ import annotations

import asyncio
import base64
import math
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from scaler.api import ScaledObject
from scaler.decision import ScalingState, TriggerReading, decide
from scaler.triggers import trigger_specs
from scalers.base import (
    BadMetric,
    MetricType,
    Scaler,
    ScalerError,
    SourceUnreachable,
    TriggerContext,
)
from scalers.context import ScalerContext, Secret
from scalers.pools import CircuitOpen, Pools
from scalers.registry import build_scaler, parse_metadata
from tests.integration.ports import free_port
from tests.integration.prometheus_server import Series, running_prometheus

END = int(time.time())
EARLY = 20 * 60  # seconds before END: inside the backfilled history, before the change
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _orders(age: int) -> float:
    return 7.0 if age > 10 * 60 else 42.0  # the queue grew ten minutes before END


SERIES = [
    Series("orders_waiting", {"queue": "orders"}, _orders),
    Series("worker_busy", {"pod": "worker-a"}, lambda age: 3.0),
    Series("worker_busy", {"pod": "worker-b"}, lambda age: 5.0),
    Series("error_ratio", {"service": "idle"}, lambda age: math.nan),  # 0/0 on no traffic
    Series("latency_bound", {"service": "idle"}, lambda age: math.inf),
]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), SERIES, END) as url:
        yield url


def prometheus_scaler(
    pools: Pools,
    metadata: Mapping[str, str],
    auth: Mapping[str, str] | None = None,
    now: Callable[[], float] = time.time,
) -> Scaler:
    parsed = parse_metadata("prometheus", metadata)
    spec = parsed.metric_spec(TriggerContext(index=0))
    context = ScalerContext(
        trigger_type="prometheus",
        metadata=parsed,
        spec=spec,
        pools=pools,
        auth={k: Secret(v) for k, v in (auth or {}).items()},
        timeout=2.0,
        now=now,
    )
    return build_scaler(context)


def query(server: str, promql: str, **options: str) -> dict[str, str]:
    return {"serverAddress": server, "query": promql, "threshold": "10", **options}


# --- against Prometheus ----------------------------------------------------------------------


async def test_reads_the_single_element_value_now(prometheus: str, pools: Pools) -> None:
    scaler = prometheus_scaler(pools, query(prometheus, 'orders_waiting{queue="orders"}'))
    assert await scaler.read() == 42.0


async def test_time_in_query_parameters_pins_the_instant(prometheus: str, pools: Pools) -> None:
    early = datetime.fromtimestamp(END - EARLY, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    pinned = query(prometheus, "orders_waiting", queryParameters=f"time={early}")
    assert await prometheus_scaler(pools, pinned).read() == 7.0


async def test_the_clock_gives_the_query_time(prometheus: str, pools: Pools) -> None:
    scaler = prometheus_scaler(pools, query(prometheus, "orders_waiting"), now=lambda: END - EARLY)
    assert await scaler.read() == 7.0


async def test_aggregated_query_reads_the_total(prometheus: str, pools: Pools) -> None:
    assert await prometheus_scaler(pools, query(prometheus, "sum(worker_busy)")).read() == 8.0


async def test_scalar_result_is_read(prometheus: str, pools: Pools) -> None:
    scaler = prometheus_scaler(pools, query(prometheus, "scalar(max(worker_busy))"))
    assert await scaler.read() == 5.0


@pytest.mark.parametrize(
    "promql",
    ["absent_metric", 'orders_waiting{queue="refunds"}', "error_ratio", "latency_bound"],
)
async def test_null_empty_nan_and_inf_are_zero_when_ignore_null_values(
    prometheus: str, pools: Pools, promql: str
) -> None:
    assert await prometheus_scaler(pools, query(prometheus, promql)).read() == 0.0


@pytest.mark.parametrize(
    ("promql", "message"),
    [
        ("absent_metric", "returned no data: its target may be lost"),
        ("error_ratio", "returned NaN"),
        ("latency_bound", r"returned \+Inf"),
    ],
)
async def test_null_empty_nan_and_inf_are_errors_without_ignore_null_values(
    prometheus: str, pools: Pools, promql: str, message: str
) -> None:
    scaler = prometheus_scaler(pools, query(prometheus, promql, ignoreNullValues="false"))
    with pytest.raises(BadMetric, match=message):
        await scaler.read()


async def test_more_than_one_element_is_an_error(prometheus: str, pools: Pools) -> None:
    scaler = prometheus_scaler(pools, query(prometheus, "worker_busy"))
    with pytest.raises(BadMetric, match="returned 2 elements; it must return one"):
        await scaler.read()


async def test_range_vector_is_an_error_not_a_null(prometheus: str, pools: Pools) -> None:
    scaler = prometheus_scaler(pools, query(prometheus, 'orders_waiting{queue="orders"}[5m]'))
    with pytest.raises(BadMetric, match="returned a matrix result"):
        await scaler.read()


async def test_bad_query_names_the_status_and_prometheus_reason(
    prometheus: str, pools: Pools
) -> None:
    scaler = prometheus_scaler(pools, query(prometheus, "sum(worker_busy"))
    with pytest.raises(BadMetric) as caught:
        await scaler.read()
    assert "HTTP 400" in str(caught.value)
    assert "bad_data" in str(caught.value) and "parse error" in str(caught.value)
    # a bad query is the trigger's fault, not the server's: the endpoint stays usable
    assert await prometheus_scaler(pools, query(prometheus, "sum(worker_busy)")).read() == 8.0


async def test_server_down_is_unreachable_then_the_circuit_opens(pools: Pools) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    scaler = prometheus_scaler(pools, query(down, "up"))
    with pytest.raises(SourceUnreachable) as first:
        await scaler.read()
    assert type(first.value) is SourceUnreachable
    with pytest.raises(CircuitOpen):
        await scaler.read()
    # the breaker is per endpoint: another trigger on the same server fails fast too
    with pytest.raises(CircuitOpen):
        await prometheus_scaler(pools, query(down, "sum(up)")).read()


async def test_replica_count_from_the_decision(prometheus: str, pools: Pools) -> None:
    so = ScaledObject.model_validate(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "orders-worker"},
            "spec": {
                "scaleTargetRef": {"name": "orders-worker"},
                "minReplicaCount": 0,
                "maxReplicaCount": 20,
                "triggers": [
                    {
                        "type": "prometheus",
                        "name": "orders",
                        "metadata": query(prometheus, "sum(orders_waiting)", threshold="10"),
                    }
                ],
            },
        }
    )
    (name, spec), trigger = trigger_specs(so)[0], so.spec.triggers[0]
    parsed = parse_metadata(trigger.type, trigger.metadata)
    scaler = build_scaler(ScalerContext(trigger.type, parsed, spec, pools, timeout=2.0))
    value = await scaler.read()
    decision = decide(so, 0, [TriggerReading(name, spec, value=value)], ScalingState(), 0.0)
    assert spec.metric_type is MetricType.AVERAGE_VALUE
    assert (value, decision.desired_replicas) == (42.0, 5)  # ceil(42 / 10), from zero


# --- what we send: a small server that records requests ---------------------------------------

ANSWER = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "3"]}]},
}


class Recorder:
    """A Prometheus stand-in: records each request, answers with `handler`."""

    def __init__(self) -> None:
        self.requests: list[web.Request] = []
        self.handler: Handler = self._answer

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(ANSWER)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        return await self.handler(request)


async def _serve(recorder: Recorder, tls: ssl.SSLContext | None = None) -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/api/v1/query", recorder.handle)
    app.router.add_get("/prefix/api/v1/query", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls).start()
    return runner


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, str]]:
    seen = Recorder()
    runner = await _serve(seen)
    host, port = runner.addresses[0][:2]
    yield seen, f"http://{host}:{port}"
    await runner.cleanup()


async def test_request_carries_keda_parameters_and_custom_headers(
    recorder: tuple[Recorder, str], pools: Pools
) -> None:
    seen, url = recorder
    metadata = query(
        url + "/prefix/",
        'sum(rate(http_requests_total{job="api"}[2m])) + 1',
        namespace="team-a",
        customHeaders="X-Scope-OrgID=tenant-1,X-Client-Id=cid",
        queryParameters="dedup=true,partial_response=false",
    )
    now = 1_750_000_000.0
    assert await prometheus_scaler(pools, metadata, now=lambda: now).read() == 3.0
    request = seen.requests[-1]
    assert request.path == "/prefix/api/v1/query"
    assert list(request.query.items()) == [
        ("query", 'sum(rate(http_requests_total{job="api"}[2m])) + 1'),
        ("time", "2025-06-15T15:06:40Z"),
        ("namespace", "team-a"),
        ("dedup", "true"),
        ("partial_response", "false"),
    ]
    assert request.headers["X-Scope-OrgID"] == "tenant-1"
    assert request.headers["X-Client-Id"] == "cid"
    assert "Authorization" not in request.headers


@pytest.mark.parametrize(
    ("auth_modes", "auth", "header", "expected"),
    [
        ("bearer", {"bearerToken": "tok-123\n"}, "Authorization", "Bearer tok-123"),
        (
            "basic",
            {"username": "keda", "password": "s3cret"},
            "Authorization",
            "Basic " + base64.b64encode(b"keda:s3cret").decode(),
        ),
        (
            "basic",
            {"username": "api-key"},
            "Authorization",
            "Basic " + base64.b64encode(b"api-key:").decode(),
        ),
        (
            "custom",
            {"customAuthHeader": "X-Api-Key", "customAuthValue": "k-42"},
            "X-Api-Key",
            "k-42",
        ),
    ],
)
async def test_auth_modes_send_the_credentials(
    recorder: tuple[Recorder, str],
    pools: Pools,
    auth_modes: str,
    auth: dict[str, str],
    header: str,
    expected: str,
) -> None:
    seen, url = recorder
    scaler = prometheus_scaler(pools, query(url, "up", authModes=auth_modes), auth=auth)
    await scaler.read()
    assert seen.requests[-1].headers[header] == expected


async def test_wrong_bearer_token_error_names_the_status_not_the_token(
    recorder: tuple[Recorder, str], pools: Pools
) -> None:
    seen, url = recorder

    async def unauthorized(request: web.Request) -> web.StreamResponse:
        # a careless proxy that echoes what it was sent
        echoed = request.headers.get("Authorization", "")
        return web.Response(status=401, text=f"invalid credentials: {echoed}")

    seen.handler = unauthorized
    token = "wrong-token-0123456789"
    scaler = prometheus_scaler(pools, query(url, "up", authModes="bearer"), {"bearerToken": token})
    with pytest.raises(BadMetric) as caught:
        await scaler.read()
    text = f"{caught.value} {caught.value!r}"
    assert "HTTP 401" in text
    assert token not in text
    assert "***" in text


async def test_server_error_is_unreachable_and_opens_the_circuit(
    recorder: tuple[Recorder, str], pools: Pools
) -> None:
    seen, url = recorder

    async def overloaded(request: web.Request) -> web.StreamResponse:
        body = {"status": "error", "errorType": "timeout", "error": "query timed out"}
        return web.json_response(body, status=503)

    seen.handler = overloaded
    scaler = prometheus_scaler(pools, query(url, "up"))
    with pytest.raises(SourceUnreachable, match="HTTP 503: timeout: query timed out"):
        await scaler.read()
    with pytest.raises(CircuitOpen):
        await scaler.read()
    assert len(seen.requests) == 1


async def test_slow_server_times_out_within_the_triggers_timeout(
    recorder: tuple[Recorder, str], pools: Pools
) -> None:
    seen, url = recorder
    release = asyncio.Event()

    async def stuck(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.json_response(ANSWER)

    seen.handler = stuck
    scaler = prometheus_scaler(pools, query(url, "up", timeout="200"))
    with pytest.raises(SourceUnreachable, match=r"no answer within 0.2s"):
        await scaler.read()
    release.set()


@pytest.mark.parametrize(
    ("auth_modes", "auth", "message"),
    [
        ("bearer", {}, "authModes bearer needs the auth parameter bearerToken"),
        ("basic", {"password": "pw-xyz"}, "authModes basic needs the auth parameter username"),
        ("bearer,basic", {"bearerToken": "t", "username": "u"}, "cannot both be set"),
        ("custom", {"customAuthHeader": "X-Key"}, "needs the auth parameter customAuthValue"),
        ("tls", {"cert": "c"}, "authModes tls needs the auth parameter key"),
        ("oauth", {}, "'oauth' is not supported by prometheus"),
    ],
)
def test_incomplete_auth_fails_when_the_reader_is_built(
    auth_modes: str, auth: dict[str, str], message: str
) -> None:
    with pytest.raises(ScalerError, match=message) as caught:
        prometheus_scaler(Pools(), query("http://p:9090", "up", authModes=auth_modes), auth)
    for value in auth.values():
        assert len(value) < 3 or value not in str(caught.value)


# --- TLS: a self-signed server certificate, also used as the client's --------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


async def _tls_server(
    cert: Path, key: Path, client_ca: Path | None = None
) -> tuple[Recorder, web.AppRunner, str]:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    if client_ca is not None:
        tls.verify_mode = ssl.CERT_REQUIRED
        tls.load_verify_locations(client_ca)
    seen = Recorder()
    runner = await _serve(seen, tls)
    host, port = runner.addresses[0][:2]
    return seen, runner, f"https://{host}:{port}"


async def test_tls_server_certificate_checks(certificate: tuple[Path, Path], pools: Pools) -> None:
    cert, key = certificate
    _, runner, url = await _tls_server(cert, key)
    try:
        with pytest.raises(SourceUnreachable, match="certificate"):
            await prometheus_scaler(pools, query(url, "up")).read()
        # the endpoint's circuit is open now: a fresh pool for each way that works
        async with _fresh() as fresh:
            unsafe = prometheus_scaler(fresh, query(url, "up", unsafeSsl="true"))
            assert await unsafe.read() == 3.0
        async with _fresh() as fresh:
            trusted = prometheus_scaler(fresh, query(url, "up"), {"ca": cert.read_text()})
            assert await trusted.read() == 3.0
    finally:
        await runner.cleanup()


async def test_tls_auth_mode_presents_the_client_certificate(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    seen, runner, url = await _tls_server(cert, key, client_ca=cert)
    auth = {"cert": cert.read_text(), "key": key.read_text(), "ca": cert.read_text()}
    try:
        async with _fresh() as pools:
            scaler = prometheus_scaler(pools, query(url, "up", authModes="tls"), auth)
            assert await scaler.read() == 3.0
        async with _fresh() as pools:
            without = prometheus_scaler(pools, query(url, "up"), {"ca": cert.read_text()})
            with pytest.raises(SourceUnreachable):
                await without.read()
    finally:
        await runner.cleanup()
    assert len(seen.requests) == 1


@asynccontextmanager
async def _fresh() -> AsyncIterator[Pools]:
    """A Pools of its own (a circuit of its own), closed on exit."""
    own = Pools()
    try:
        yield own
    finally:
        await own.close()
