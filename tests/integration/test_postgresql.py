"""The postgresql reader against the real PostgreSQL on loopback (trust auth, database test).

Each test works on its own uniquely named table and drops it.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from scaler.api import ScaledObject
from scaler.decision import ScalingState, TriggerReading, decide
from scaler.triggers import trigger_specs
from scalers.base import BadMetric, Scaler, ScalerError, SourceUnreachable, TriggerContext
from scalers.context import ScalerContext, Secret
from scalers.pools import CircuitOpen, Pools
from scalers.registry import build_scaler, parse_metadata

SERVER = {
    "host": "127.0.0.1",
    "port": "5432",
    "userName": "postgres",
    "dbName": "test",
    "sslmode": "disable",
}
URL = "postgresql://postgres@127.0.0.1:5432/test"


def reader(metadata: dict[str, str], pools: Pools, auth: dict[str, Secret] | None = None) -> Scaler:
    meta = parse_metadata("postgresql", metadata)
    spec = meta.metric_spec(TriggerContext(index=0))
    return build_scaler(ScalerContext("postgresql", meta, spec, pools, auth=auth or {}))


@pytest.fixture
async def db() -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(URL)
    yield connection
    await connection.close()


@pytest.fixture
async def jobs(db: asyncpg.Connection) -> AsyncIterator[str]:
    """A jobs table: 7 queued, 2 running, 3 done."""
    table = f"ebbflow_test_jobs_{uuid.uuid4().hex[:10]}"
    await db.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, state text NOT NULL)")
    states = ["queued"] * 7 + ["running"] * 2 + ["done"] * 3
    await db.executemany(f"INSERT INTO {table} (state) VALUES ($1)", [(s,) for s in states])
    yield table
    await db.execute(f"DROP TABLE {table}")


async def test_count_of_queued_jobs_from_host_port_and_database(pools: Pools, jobs: str) -> None:
    query = f"SELECT count(*) FROM {jobs} WHERE state = 'queued'"
    scaler = reader({**SERVER, "query": query, "targetQueryValue": "5"}, pools)
    assert await scaler.read() == 7.0


@pytest.mark.parametrize(
    "connection",
    [URL, "host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable"],
    ids=["url", "keywords"],
)
async def test_connection_string_from_authentication(
    pools: Pools, jobs: str, connection: str
) -> None:
    query = f"SELECT ceil(count(*)::decimal / 2) FROM {jobs} WHERE state <> 'done'"
    scaler = reader(
        {"query": query, "targetQueryValue": "1.5"}, pools, auth={"connection": Secret(connection)}
    )
    assert await scaler.read() == 5.0  # ceil(9 / 2), a numeric


async def test_triggers_with_one_connection_share_one_pool(
    pools: Pools, jobs: str, db: asyncpg.Connection
) -> None:
    application = f"ebbflow-test-{uuid.uuid4().hex[:8]}"
    connection = Secret(f"{URL}?application_name={application}")
    queued = reader(
        {"query": f"SELECT count(*) FROM {jobs} WHERE state = 'queued'", "targetQueryValue": "5"},
        pools,
        auth={"connection": connection},
    )
    running = reader(
        {"query": f"SELECT count(*) FROM {jobs} WHERE state = 'running'", "targetQueryValue": "5"},
        pools,
        auth={"connection": connection},
    )
    assert (await queued.read(), await running.read(), await queued.read()) == (7.0, 2.0, 7.0)
    sessions = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", application
    )
    assert sessions == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT 1 WHERE false", "returned 0 rows"),
        ("SELECT * FROM (VALUES (1), (2)) AS t", "returned 2 rows"),
        ("SELECT 1, 2", "returned 2 columns"),
        ("SELECT NULL::int", "NULL"),
        ("SELECT 'ten'", "a str, not a number"),
        ("SELECT true", "a bool, not a number"),
        ("SELECT 'NaN'::float8", "returned nan"),
        ("SELECT count(*) FROM ebbflow_no_such_table", "UndefinedTableError"),
    ],
)
async def test_query_must_return_one_number(pools: Pools, query: str, message: str) -> None:
    scaler = reader({**SERVER, "query": query, "targetQueryValue": "5"}, pools)
    with pytest.raises(BadMetric, match=message):
        await scaler.read()


async def test_refused_login_names_no_password(pools: Pools) -> None:
    # trust authentication accepts any password for a real role, so an unknown role is
    # what the server refuses here; the password must stay out of everything printed
    password = f"pw-{uuid.uuid4().hex}"
    for auth in (
        {
            "connection": Secret(
                f"postgresql://nobody_{uuid.uuid4().hex[:6]}:{password}@127.0.0.1:5432/test"
            )
        },
        {"password": Secret(password)},
    ):
        metadata = {**SERVER, "userName": f"nobody_{uuid.uuid4().hex[:6]}", "query": "SELECT 1"}
        scaler = reader({**metadata, "targetQueryValue": "1"}, pools, auth=auth)
        with pytest.raises(ScalerError) as caught:
            await scaler.read()
        assert not isinstance(caught.value, SourceUnreachable)
        assert "does not exist" in str(caught.value)
        for text in (str(caught.value), repr(caught.value), repr(scaler), repr(vars(scaler))):
            assert password not in text


async def test_closed_port_is_unreachable_then_the_circuit_opens() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clock = [1000.0]
    pools = Pools(now=lambda: clock[0], open_seconds=30)
    password = f"pw-{uuid.uuid4().hex}"
    try:
        scaler = reader(
            {**SERVER, "port": str(port), "query": "SELECT 1", "targetQueryValue": "1"},
            pools,
            auth={"password": Secret(password)},
        )
        with pytest.raises(SourceUnreachable) as first:
            await scaler.read()
        assert not isinstance(first.value, CircuitOpen)
        assert password not in str(first.value)
        with pytest.raises(CircuitOpen) as second:
            await scaler.read()
        assert password not in str(second.value)
        clock[0] += 31
        with pytest.raises(SourceUnreachable) as retried:
            await scaler.read()
        assert not isinstance(retried.value, CircuitOpen)
    finally:
        await pools.close()


async def test_queued_jobs_set_the_replica_count(pools: Pools, jobs: str) -> None:
    so = ScaledObject.model_validate(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "worker"},
            "spec": {
                "scaleTargetRef": {"name": "worker"},
                "maxReplicaCount": 10,
                "triggers": [
                    {
                        "type": "postgresql",
                        "metadata": {
                            **SERVER,
                            "query": f"SELECT count(*) FROM {jobs} WHERE state = 'queued'",
                            "targetQueryValue": "2",
                        },
                    }
                ],
            },
        }
    )
    [(name, spec)] = trigger_specs(so)
    trigger = so.spec.triggers[0]
    meta = parse_metadata(trigger.type, trigger.metadata)
    value = await build_scaler(ScalerContext(trigger.type, meta, spec, pools)).read()
    decision = decide(so, 2, [TriggerReading(name, spec, value=value)], ScalingState(), 0.0)
    # 7 queued at 2 per replica: ceil(7 / 2) = 4, within the default scale-up policy from 2
    assert (spec.name, value, decision.desired_replicas) == ("s0-postgresql", 7.0, 4)
