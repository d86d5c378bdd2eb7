"""`agentdeck console` (also plain `agentdeck`): the on-call console, gateway embedded or attached."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("console", parents=parents,
                       help="the on-call console with the gateway embedded (or --attach to a running one)")
    p.add_argument("--attach", metavar="URL",
                   help="attach to a running `agentdeck serve` at URL instead of running the gateway in this process")
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

    from agentdeck.gateway.server import GatewayThread

    gt = GatewayThread(cfg).start()
    write_runtime(cfg, gt.url, gt.admin_token)
    try:
        app = ConsoleApp(InProcessEngine(gt, owns_gateway=False), tui=cfg.tui, theme=theme,
                         db_path=db_path(cfg.gateway.data_dir), project_dir=Path.cwd())
        app.run()
    finally:
        from agentdeck.demo import stop_gateway_quietly

        stop_gateway_quietly(gt)
        clear_runtime(cfg)
    return 0
