"""Helpers the subcommands share: loading config and finding a running gateway.

How a command finds its gateway when no ``--url`` is given, in order:
1. the ``gateway.json`` a live gateway left in this config's data dir (its URL and admin token);
2. unless the config pins an address (``[gateway] host`` or ``port`` set in the file): the
   registry of live local gateways (``agentdeck.runtime``), so a ``demo`` in another terminal,
   started from any directory, is found; with several live, the command asks for ``--url``;
3. the config's ``host:port``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from agentdeck import runtime
from agentdeck.config import Config, load_config
from agentdeck.errors import AdminTokenRefused, AgentdeckError, GatewayUnreachable
from agentdeck.paths import private_dir

RUNTIME_FILE = "gateway.json"


def config_from(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


def runtime_path(cfg: Config) -> Path:
    return cfg.gateway.data_path / RUNTIME_FILE


def write_runtime(cfg: Config, url: str, admin_token: str, *, kind: str = "serve") -> Path:
    """Leave the running gateway's URL and admin token for `stop`/`status` and register it as live.

    The data dir is made 0700 and the file 0600: the admin token is a secret."""
    p = runtime_path(cfg)
    private_dir(p.parent)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": url, "admin_token": admin_token, "pid": os.getpid()}, f)
    os.chmod(tmp, 0o600)
    os.replace(tmp, p)
    try:
        runtime.register(url, p, kind=kind, data_dir=p.parent)
    except OSError:
        pass  # an unwritable runtime dir costs discovery from elsewhere, not the gateway
    return p


def clear_runtime(cfg: Config) -> None:
    p = runtime_path(cfg)
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError):
        return
    if data.get("pid") == os.getpid():
        runtime.unregister(str(data.get("url", "")))
        try:
            p.unlink()
        except OSError:
            pass


def read_runtime(cfg: Config) -> dict[str, Any] | None:
    """The data dir's gateway.json while the gateway that wrote it is alive (a stale file is ignored)."""
    try:
        data = json.loads(runtime_path(cfg).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        return None
    pid = data.get("pid")
    if isinstance(pid, int) and not runtime.pid_alive(pid):
        return None
    return data


def address_pinned(cfg: Config) -> bool:
    """True when the config file names the gateway's address: then it is the gateway meant."""
    return bool({"host", "port"} & cfg.gateway.model_fields_set)


def _describe(entries: list[runtime.LiveGateway]) -> str:
    return ", ".join(f"{e.kind} at {e.url} (pid {e.pid})" for e in entries)


def live_gateways(cfg: Config) -> list[runtime.LiveGateway]:
    """Every live local gateway: this config's first, then the registry's."""
    registered = runtime.live()
    out: list[runtime.LiveGateway] = []
    rt = read_runtime(cfg)
    if rt is not None:
        url = rt["url"].rstrip("/")
        known = next((e for e in registered if e.url == url), None)
        out.append(known or runtime.LiveGateway(pid=int(rt.get("pid") or 0), url=url, token_file=str(runtime_path(cfg)),
                                                kind="this config's", data_dir=str(cfg.gateway.data_path)))
    seen = {e.url for e in out}
    out += [e for e in registered if e.url not in seen]
    return out


def gateway_target(cfg: Config, url: str | None) -> tuple[str, str]:
    """(base URL, admin token) of the gateway a command should talk to."""
    token = os.environ.get("AGENTDECK_ADMIN_TOKEN") or cfg.gateway.admin_token
    rt = read_runtime(cfg)
    if url is not None:
        url = url.rstrip("/")
        if not token:
            if rt is not None and rt.get("url") == url:
                token = rt.get("admin_token", "")
            else:
                entry = runtime.find(url)
                token = entry.admin_token() if entry is not None else ""
        return url, token
    if rt is not None:
        return rt["url"].rstrip("/"), token or rt.get("admin_token", "")
    if not address_pinned(cfg):
        entries = runtime.live()
        if len(entries) == 1:
            return entries[0].url, token or entries[0].admin_token()
        if len(entries) > 1:
            raise AgentdeckError(f"{len(entries)} local gateways are running: {_describe(entries)}; "
                                 "pick one with --url (`agentdeck status` lists them)")
    return f"http://{cfg.gateway.host}:{cfg.gateway.port}", token


def admin_request(url: str, token: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One admin call with a short timeout; a clear error if the gateway is not there."""
    import httpx

    try:
        r = httpx.request(method, url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=5.0)
    except httpx.HTTPError as e:
        others = [g for g in runtime.live() if g.url != url]
        hint = f"; live local gateways: {_describe(others)} (pass --url)" if others else ""
        raise GatewayUnreachable(f"cannot reach the gateway at {url} ({type(e).__name__}); "
                                 f"is `agentdeck serve` running?{hint}") from None
    if r.status_code == 401:
        raise AdminTokenRefused(f"the gateway at {url} refused the admin token (set AGENTDECK_ADMIN_TOKEN or [gateway] admin_token)")
    if r.status_code >= 400:
        raise GatewayUnreachable(f"the gateway at {url} answered {r.status_code}: {r.text[:200]}")
    return r.json()
