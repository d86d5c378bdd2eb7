"""Flaky by a shared resource: a fixed port that another run may hold at the same moment."""

import socket
import time
import zlib
from pathlib import Path

# Fixed per checkout (so copies of this project do not collide), the same for every run of it,
# and below Linux's ephemeral range (32768+) so no unrelated connection ever holds it.
PORT = 20000 + zlib.crc32(str(Path(__file__).resolve()).encode()) % 12000


def test_metrics_exporter_binds_its_port() -> None:
    exporter = socket.socket()
    try:
        exporter.bind(("127.0.0.1", PORT))
        exporter.listen(1)
        time.sleep(0.08)  # the exporter serving while the test looks at it
    finally:
        exporter.close()
