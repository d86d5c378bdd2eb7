"""Fixtures for the flaky fixture project."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Iterator

import pytest


@pytest.fixture
def inventory_service() -> Iterator[tuple[str, int]]:
    """A stand-in for an outside service that drops about one connection in four, as real ones do.

    Its behaviour comes from the OS's entropy (SystemRandom), not from the test's `random`
    state: no seed the test controls makes it reliable, exactly like a remote service.
    """
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.05)
    stop = threading.Event()
    chance = random.SystemRandom()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(2)
                if chance.random() < 0.25:
                    continue  # dropped: closed without an answer
                data = conn.recv(64)
                conn.sendall(b"stock:" + data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[:2]
    stop.set()
    try:
        server.shutdown(socket.SHUT_RDWR)  # wakes the accept() at once
    except OSError:
        pass
    thread.join(2)
    server.close()
