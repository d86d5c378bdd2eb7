"""`agentdeck console` (also plain `agentdeck`): the on-call console, gateway embedded or attached."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("console", parents=parents,
                       help="the on-call console with the gateway embedded (or --attach to a running one)")
    p.add_argument("--attach", metavar="URL",
                   help="attach to a running `agentdeck serve` at URL instead of running the gateway in this process")
    p.add_argument("--gateway-process", action="store_true",
                   help="run the embedded gateway as a child process instead of a thread (no shared interpreter "
                        "lock with the console's rendering: use it under heavy traffic; `[tui] gateway = \"process\"` "
                        "makes it the default)")
    p.add_argument("--theme", metavar="NAME",
                   help="dark (default), light, high-contrast, a theme in ~/.config/agentdeck/themes, or a .toml path")
    p.set_defaults(func=run)


def probe(url: str, token: str) -> None:
    """Fail with one clear line if nothing answers at URL or the admin token is refused."""
    import httpx

    from agentdeck.errors import GatewayUnreachable

    try:
        r = httpx.get(url + "/admin/status", headers={"Authorization": f"Bearer {token}"}, timeout=3.0)
    except httpx.HTTPError as e:
        raise GatewayUnreachable(f"cannot reach a gateway at {url} ({type(e).__name__}); is `agentdeck serve` running?") from None
    if r.status_code == 401:
        raise GatewayUnreachable(f"the gateway at {url} refused the admin token "
                                 "(set AGENTDECK_ADMIN_TOKEN or [gateway] admin_token)")
    if r.status_code != 200:
        raise GatewayUnreachable(f"{url} does not look like an agentdeck gateway (/admin/status answered {r.status_code})")


def spawn_gateway(cfg: Any) -> tuple["subprocess.Popen[str]", str, str]:
    """Start `agentdeck serve` with this config as a child process; (process, URL, admin token).

    Its stderr (alert lines) goes to data_dir/gateway.log so it never draws over the console.
    """
    import os
    import re
    import secrets
    import sys

    from agentdeck.errors import AgentdeckError

    token = cfg.gateway.admin_token or secrets.token_urlsafe(24)
    cmd = [sys.executable, "-m", "agentdeck", "serve"]
    if cfg.source != "<defaults>":
        cmd += ["--config", cfg.source]
    cfg.gateway.data_path.mkdir(parents=True, exist_ok=True)
    log = open(cfg.gateway.data_path / "gateway.log", "a")  # noqa: SIM115 - the child owns it from here
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True,
                            env={**os.environ, "AGENTDECK_ADMIN_TOKEN": token})
    log.close()
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"(http://\S+)", line)
    if m is None:
        proc.kill()
        raise AgentdeckError(f"the gateway child process did not start (see {cfg.gateway.data_path / 'gateway.log'})")
    return proc, m.group(1), token


def run(args: argparse.Namespace) -> int:
    from agentdeck.cli.common import clear_runtime, config_from, gateway_target, write_runtime
    from agentdeck.store import db_path
    from agentdeck.tui.app import ConsoleApp
    from agentdeck.tui.engine import InProcessEngine, RemoteEngine
    from agentdeck.tui.theme import resolve_theme

    cfg = config_from(args)
    theme = resolve_theme(args.theme or cfg.tui.theme)
    if args.attach:
        url, token = gateway_target(cfg, args.attach)
        probe(url, token)
        app = ConsoleApp(RemoteEngine(url, token), tui=cfg.tui, theme=theme, db_path=db_path(cfg.gateway.data_dir),
                         project_dir=Path.cwd())
        app.run()
        return 0

    if args.gateway_process or cfg.tui.gateway == "process":
        proc, url, token = spawn_gateway(cfg)
        try:
            app = ConsoleApp(RemoteEngine(url, token, child=True), tui=cfg.tui, theme=theme, db_path=db_path(cfg.gateway.data_dir),
                             project_dir=Path.cwd())
            app.run()
        finally:
            proc.terminate()
            try:
                proc.wait(cfg.gateway.shutdown_grace_s + 5)
            except subprocess.TimeoutExpired:
                proc.kill()
        return 0

    from agentdeck.gateway.server import GatewayThread

    gt = GatewayThread(cfg).start()
    write_runtime(cfg, gt.url, gt.admin_token)
    try:
        app = ConsoleApp(InProcessEngine(gt, owns_gateway=False), tui=cfg.tui, theme=theme,
                         db_path=db_path(cfg.gateway.data_dir), project_dir=Path.cwd())
        app.run()
    finally:
        gt.stop_quietly()
        clear_runtime(cfg)
    return 0
