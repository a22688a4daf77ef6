"""Fixtures shared by the integration tests, which talk to real servers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from scalers.pools import Pools


@pytest.fixture
async def pools() -> AsyncIterator[Pools]:
    """The connection pools one operator process shares across its scalers."""
    shared = Pools()
    yield shared
    await shared.close()
