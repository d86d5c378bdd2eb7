"""Flaky by an external dependency: a real network call to a service that sometimes drops it."""

import socket


def test_inventory_lookup(inventory_service: tuple[str, int]) -> None:
    with socket.create_connection(inventory_service, timeout=2) as conn:
        conn.sendall(b"sku-1")
        reply = conn.recv(64)
    assert reply == b"stock:sku-1"
