"""The catalog never touches the network: import, build and price with every socket call refused."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r'''
import socket, threading

def refuse(*a, **k):
    raise AssertionError("network used: " + repr(a[:2]))

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

from agentdeck.config import Config
from agentdeck.pricing import BUILTIN_PRICES, PriceTable, Usage

t = PriceTable(Config())
for m in ["claude-opus-5-5", "gpt-6.1-sol", "claude-sonnet-4-5-20250929", "o3", "no-such-model"]:
    t.cost(m, Usage(input_tokens=300_000, output_tokens=10, cache_read_tokens=5), "openai")
    t.worst_case(m, 1000, 100)
    t.get(m, variant={"service_tier": "flex"})
assert BUILTIN_PRICES
names = [th.name for th in threading.enumerate()]
assert not any("genai_prices" in n for n in names), names
print("offline ok")
'''


def test_pricing_needs_no_network() -> None:
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "offline ok"
