"""`ebbflow scalers probe` against the real Redis: values, errors, and no secret in sight."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio
from typer.testing import CliRunner

from ebbflow.cli import app

SECRET = "probe-secret-" + uuid.uuid4().hex


@pytest.fixture
async def backlog() -> AsyncIterator[str]:
    name = f"ebbflow-probe-{uuid.uuid4().hex[:8]}"
    client = redis.asyncio.Redis(host="127.0.0.1", port=6379)
    await client.rpush(name, *range(12))
    yield name
    await client.delete(name)
    await client.aclose()


def manifest(tmp_path: Path, list_name: str) -> Path:
    encoded = base64.b64encode(SECRET.encode()).decode()
    user = base64.b64encode(b"ebbflow-nobody").decode()
    text = f"""\
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: worker, namespace: jobs}}
spec:
  scaleTargetRef: {{name: worker}}
  triggers:
    - type: redis
      name: backlog
      metadata: {{address: "127.0.0.1:6379", listName: {list_name}, listLength: "5",
                  activationListLength: "3"}}
    - type: redis
      name: guarded
      metadata: {{address: "127.0.0.1:6379", listName: {list_name}}}
      authenticationRef: {{name: redis-auth}}
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {{name: redis-auth, namespace: jobs}}
spec:
  secretTargetRef:
    - {{parameter: username, name: redis-secret, key: username}}
    - {{parameter: password, name: redis-secret, key: password}}
---
apiVersion: v1
kind: Secret
metadata: {{name: redis-secret, namespace: jobs}}
data: {{username: {user}, password: {encoded}}}
"""
    path = tmp_path / "so.yaml"
    path.write_text(text)
    return path


def test_probe_reads_each_trigger_and_never_shows_a_secret(tmp_path: Path, backlog: str) -> None:
    result = CliRunner().invoke(
        app, ["scalers", "probe", "-f", str(manifest(tmp_path, backlog)), "-o", "json"]
    )
    assert result.exit_code == 1, "one trigger fails, so the probe says so"
    rows = {r["trigger"]: r for r in json.loads(result.output)["results"]}
    assert rows["backlog"]["value"] == 12.0
    assert rows["backlog"]["active"] is True
    assert rows["backlog"]["target"] == 5.0
    assert rows["backlog"]["error"] is None
    # no such Redis user: the login is refused, and the error names no secret
    assert rows["guarded"]["value"] is None
    assert rows["guarded"]["error"]
    assert SECRET not in result.output

    table = CliRunner().invoke(app, ["scalers", "probe", "-f", str(manifest(tmp_path, backlog))])
    assert SECRET not in table.output
    assert "backlog" in table.output
