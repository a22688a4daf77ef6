"""Loopback ports for servers the tests start, and for endpoints that must be dead."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port nothing listens on now (bound, then released): start a server on it,
    or point a client at it to meet a closed port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
