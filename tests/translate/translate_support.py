"""Helpers for the Gemini and translation tests: a gateway with a Gemini provider (the mock), SDK clients."""

from __future__ import annotations

import time
from typing import Any

import httpx

from deck_support import ADMIN_TOKEN, GATEWAY_KEY

PROVIDER_KEY_GOOGLE = "AIza-provider-SECRET-eeeeeeeeeeee"
GEMINI_MODELS = ["gemini-2.5-flash", "gemini-2.5-pro"]


def gemini_provider(url: str, **extra: Any) -> dict[str, Any]:
    return {"protocol": "gemini", "base_url": url, "api_key": PROVIDER_KEY_GOOGLE, "models": list(GEMINI_MODELS),
            "retry": {"backoff_base_s": 0.01, "backoff_max_s": 0.05}, **extra}


def genai_client(gw: Any, api_version: str | None = None) -> Any:
    from google import genai
    from google.genai import types

    opts = types.HttpOptions(base_url=gw.url, retry_options=types.HttpRetryOptions(attempts=1), timeout=20_000,
                             api_version=api_version)
    return genai.Client(api_key=GATEWAY_KEY, http_options=opts)


def admin_get(gw: Any, path: str) -> Any:
    r = httpx.get(gw.url + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    r.raise_for_status()
    return r.json()


def wait_rows(gw: Any, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = admin_get(gw, f"/admin/requests?limit={max(n, 50)}")["requests"]
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)
