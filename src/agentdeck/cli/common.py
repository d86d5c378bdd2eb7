"""Helpers the subcommands share: loading config and finding a running gateway."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from agentdeck.config import Config, load_config
from agentdeck.errors import GatewayUnreachable

RUNTIME_FILE = "gateway.json"


def config_from(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


def runtime_path(cfg: Config) -> Path:
    return cfg.gateway.data_path / RUNTIME_FILE


def write_runtime(cfg: Config, url: str, admin_token: str) -> Path:
    """Leave the running gateway's URL and admin token for `stop`/`status` (mode 0600: the token is a secret)."""
    p = runtime_path(cfg)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": url, "admin_token": admin_token, "pid": os.getpid()}, f)
    os.chmod(p, 0o600)
    return p


def clear_runtime(cfg: Config) -> None:
    p = runtime_path(cfg)
    try:
        data = json.loads(p.read_text())
        if data.get("pid") == os.getpid():
            p.unlink()
    except (OSError, ValueError):
        pass


def read_runtime(cfg: Config) -> dict[str, Any] | None:
    try:
        return json.loads(runtime_path(cfg).read_text())
    except (OSError, ValueError):
        return None


def gateway_target(cfg: Config, url: str | None) -> tuple[str, str]:
    """(base URL, admin token) of the gateway a command should talk to."""
    token = os.environ.get("AGENTDECK_ADMIN_TOKEN") or cfg.gateway.admin_token
    rt = read_runtime(cfg)
    if url is None:
        if rt is not None:
            url = rt["url"]
            token = token or rt.get("admin_token", "")
        else:
            url = f"http://{cfg.gateway.host}:{cfg.gateway.port}"
    elif rt is not None and rt.get("url") == url.rstrip("/"):
        token = token or rt.get("admin_token", "")
    return url.rstrip("/"), token


def admin_request(url: str, token: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One admin call with a short timeout; a clear error if the gateway is not there."""
    import httpx

    try:
        r = httpx.request(method, url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=5.0)
    except httpx.HTTPError as e:
        raise GatewayUnreachable(f"cannot reach the gateway at {url} ({type(e).__name__}); is `agentdeck serve` running?") from None
    if r.status_code == 401:
        raise GatewayUnreachable(f"the gateway at {url} refused the admin token (set AGENTDECK_ADMIN_TOKEN or [gateway] admin_token)")
    if r.status_code >= 400:
        raise GatewayUnreachable(f"the gateway at {url} answered {r.status_code}: {r.text[:200]}")
    return r.json()
