"""What every reader of a network source shares: one timeout per read, errors typed for the
circuit breaker, and messages that never carry a credential.

A reader describes its source once (`Remote`), then runs each read through `Remote.read`:
a timeout or a failed connection becomes `SourceUnreachable` (which opens the breaker), a
`ScalerError` the reader raised passes through, and anything else becomes a `ScalerError`.
Every message is scrubbed of the source's secrets and of URL user-info first.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from scalers.base import MetricSpec, ScalerError, SourceUnreachable
from scalers.context import ScalerContext
from scalers.pools import Pools

T = TypeVar("T")

# `scheme://user:password@host`: the user-info of any URL inside a message
_USERINFO = re.compile(r"(?<=://)[^/@\s'\"]+@")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with each secret, and the user-info of any URL in it, replaced by `***`."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _USERINFO.sub("***@", text)


def display_url(url: str) -> str:
    """`url` without its user-info: safe to show in a message or a log."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class Remote:
    """One source as the breaker and the messages see it.

    `name` says what and where (`rabbitmq queue orders at amqp://mq:5672/`), never who;
    `key` identifies the endpoint for the breaker; `unreachable` lists the client's
    exception types that mean the connection failed.
    """

    name: str
    key: Hashable
    timeout: float
    unreachable: tuple[type[BaseException], ...] = (OSError,)
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def error(self, kind: type[ScalerError], detail: str) -> ScalerError:
        return kind(redact(f"{self.name}: {detail}", self.secrets))

    def describe(self, exc: BaseException) -> str:
        text = str(exc).strip()
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

    async def read(
        self,
        pools: Pools,
        read_once: Callable[[], Awaitable[T]],
        broken: Callable[[], Awaitable[None]] | None = None,
    ) -> T:
        """`read_once()` through the endpoint's breaker, within the timeout.

        `broken` runs after a connection failure (typically `pools.discard(client key)`), so
        the next read connects afresh instead of reusing a dead client.
        """
        return await pools.breaker.call(self.key, lambda: self._attempt(read_once, broken))

    async def _attempt(
        self,
        read_once: Callable[[], Awaitable[T]],
        broken: Callable[[], Awaitable[None]] | None,
    ) -> T:
        try:
            async with asyncio.timeout(self.timeout):
                return await read_once()
        except ScalerError:
            raise
        except TimeoutError:
            if broken is not None:
                await broken()
            raise self.error(SourceUnreachable, f"no answer within {self.timeout:g}s") from None
        except self.unreachable as exc:
            if broken is not None:
                await broken()
            raise self.error(SourceUnreachable, self.describe(exc)) from None
        except Exception as exc:
            # a client's own message may quote its connection URL: scrub, and drop the chain
            raise self.error(ScalerError, self.describe(exc)) from None


def auth_text(ctx: ScalerContext, name: str) -> str:
    """The authentication parameter `name` revealed for the client, or "" when not given."""
    value = ctx.param(name)
    return value.reveal if value is not None else ""


class PooledReader:
    """A Scaler whose client the Pools hold under `client_key`; subclasses set the fields
    in `__init__` and implement `read_once`."""

    spec: MetricSpec
    remote: Remote
    pools: Pools
    client_key: Hashable

    async def read(self) -> float:
        return await self.remote.read(self.pools, self.read_once, self.discard)

    async def read_once(self) -> float:
        raise NotImplementedError

    async def discard(self) -> None:
        """Forget the pooled client after a connection failure; the next read reconnects."""
        await self.pools.discard(self.client_key)

    async def close(self) -> None:
        """Nothing of its own: the client belongs to the Pools."""
