"""Dependency by signature: a peer that resets the connection, with no real network at all.

The fake transport stands in for a remote service (its resets come from the OS's entropy,
not from the test's seed), so no experiment changes its rate: only the failure signature,
ConnectionResetError [ECONNRESET], names the cause.
"""

import errno
import random

_peer = random.SystemRandom()


class FlakyTransport:
    def send(self, payload: bytes) -> bytes:
        if _peer.random() < 0.3:
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        return b"ack:" + payload


def test_payment_is_acknowledged() -> None:
    assert FlakyTransport().send(b"order-7") == b"ack:order-7"
