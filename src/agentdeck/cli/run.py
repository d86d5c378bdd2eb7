"""`agentdeck run [--key NAME] [--budget USD] [--kill-on-stop] -- CMD ARGS...`: a dev session through the gateway.

Why a wrapper and not "export these variables": each run gets a session key of its own
from the gateway (`POST /admin/sessions`), so its calls and spend show up per session,
`--budget` caps that one session, and `agentdeck stop --key SESSION` stops one runaway
agent while the rest keep working. With `--kill-on-stop` an emergency stop covering the
session also terminates the tool itself (SIGTERM to its process group, SIGKILL after a
grace period): an agent refused by the gateway may otherwise keep looping on retries.

The command runs in its own process group (that is what makes the group kill reach every
child it spawned). When the wrapper owns the terminal, the group is made the terminal's
foreground group, so interactive tools (Claude Code, Codex, aider) read the keyboard and
get Ctrl-C directly, as they would without the wrapper; Ctrl-Z suspends both.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Sequence

# Codex subcommands after which the provider overrides go (`codex exec -c ... "prompt"`).
_CODEX_SUBCOMMANDS = frozenset({"exec", "e", "resume", "review"})
CODEX_PROVIDER = "agentdeck"
SESSION_KEY_ENV = "AGENTDECK_SESSION_KEY"
DEFAULT_GRACE_S = 5.0
POLL_S = 0.2


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run", parents=parents,
        help="run a dev session (Claude Code, Codex, aider, an SDK script) through the gateway",
        description="Run CMD with ANTHROPIC_BASE_URL, OPENAI_BASE_URL and a session key of its own pointed at the "
                    "gateway. Example: agentdeck run --budget 5 -- claude",
    )
    p.add_argument("--key", metavar="NAME",
                   help="a configured key to charge (the session is created under it), or a name for the session")
    p.add_argument("--budget", type=float, metavar="USD", help="this session's own budget in USD (rolling 24 h)")
    p.add_argument("--kill-on-stop", action="store_true",
                   help="terminate CMD's process group when an emergency stop covers this session")
    p.add_argument("--kill-grace", type=float, default=DEFAULT_GRACE_S, metavar="S",
                   help=f"seconds between SIGTERM and SIGKILL with --kill-on-stop (default {DEFAULT_GRACE_S:g})")
    p.add_argument("--url", metavar="U", help="gateway URL (default: the local gateway, then the config's host:port)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARGS", help="the command to run")
    p.set_defaults(func=run)


# -- pure parts (tested directly) --------------------------------------------------------
def command_name(cmd: Sequence[str]) -> str:
    return os.path.basename(cmd[0]) if cmd else ""


def session_env(base: dict[str, str], url: str, session: str, secret: str, cmd: Sequence[str]) -> dict[str, str]:
    """The environment CMD runs with: every SDK and agent CLI pointed at the gateway with the session key."""
    url = url.rstrip("/")
    env = dict(base)
    env.update({
        "ANTHROPIC_BASE_URL": url,  # the Anthropic SDK and Claude Code add /v1 themselves
        "ANTHROPIC_API_KEY": secret,  # sent as x-api-key
        "OPENAI_BASE_URL": f"{url}/v1",
        "OPENAI_API_KEY": secret,
        "OPENAI_API_BASE": f"{url}/v1",  # aider, older openai clients
        "AGENTDECK_URL": url,
        "AGENTDECK_SESSION": session,
        SESSION_KEY_ENV: secret,  # Codex reads its provider key from here (env_key)
    })
    # Only one Anthropic credential: the anthropic SDK warns on every client when both are set,
    # and an inherited one would be the user's real key (or a stale token) sent to the gateway.
    env.pop("ANTHROPIC_AUTH_TOKEN", None)
    if command_name(cmd) == "claude":
        # Claude Code: ANTHROPIC_AUTH_TOKEN (Authorization: Bearer) takes precedence over a claude.ai
        # login and needs no "use this API key?" approval, which a fresh session key would otherwise
        # ask for on every run; with both set it warns about an auth conflict.
        env.pop("ANTHROPIC_API_KEY", None)
        env["ANTHROPIC_AUTH_TOKEN"] = secret
        env.setdefault("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
    return env


def codex_args(cmd: Sequence[str], url: str) -> list[str]:
    """Codex ignores OPENAI_BASE_URL for its built-in provider: give it ours with -c overrides.

    The overrides go after the subcommand word (`codex exec -c ... PROMPT`), or right after
    `codex` for the interactive form. A command that already picks a model_provider is left alone.
    """
    out = list(cmd)
    if command_name(cmd) != "codex" or any(a.startswith("model_provider=") for a in cmd):
        return out
    table = (f'model_providers.{CODEX_PROVIDER}={{name="{CODEX_PROVIDER}",base_url="{url.rstrip("/")}/v1",'
             f'env_key="{SESSION_KEY_ENV}",wire_api="responses"}}')
    extra = ["-c", f"model_provider={CODEX_PROVIDER}", "-c", table]
    at = 2 if len(out) > 1 and out[1] in _CODEX_SUBCOMMANDS else 1
    return out[:at] + extra + out[at:]


def default_session_name(cmd: Sequence[str], key: str | None) -> str:
    base = command_name(cmd) or "session"
    return f"{key}-{base}" if key else base


def covers(status: dict[str, Any], session: str, parent: str | None) -> str | None:
    """The stop reason if the gateway's status shows a stop covering this session, else None."""
    if status.get("stopped"):
        return str(status.get("stop_reason") or "emergency stop")
    keys = status.get("stopped_keys") or {}
    for name in (session, parent):
        if name and name in keys:
            return str(keys[name] or "emergency stop")
    return None


# -- the command ------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    from agentdeck.cli.common import admin_request, config_from, gateway_target
    from agentdeck.errors import AgentdeckError, GatewayUnreachable

    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise AgentdeckError("run: no command given; usage: agentdeck run [--key NAME] [--budget USD] -- CMD ARGS...")
    if args.budget is not None and args.budget < 0:
        raise AgentdeckError("--budget: must be a non-negative number of USD")
    if args.kill_grace < 0:
        raise AgentdeckError("--kill-grace: must be a non-negative number of seconds")

    import shutil

    if shutil.which(cmd[0]) is None:  # before asking the gateway for a session nobody would use
        raise AgentdeckError(f"run: command not found: {cmd[0]}")
    cfg = config_from(args)
    url, token = gateway_target(cfg, args.url)
    configured = {k.name: k for k in cfg.keys}
    parent = args.key if args.key in configured else None
    wanted = args.key if (args.key and parent is None) else default_session_name(cmd, parent)
    body = {"name": wanted, "budget_usd": args.budget, "key": parent}
    try:
        created = admin_request(url, token, "POST", "/admin/sessions", body)
        session, secret = str(created["session"]), str(created["key"])
    except GatewayUnreachable as e:
        if parent is None or args.budget is not None or "answered 404" not in str(e):
            raise
        # A gateway without sessions: fall back to the configured key's own secret.
        session, secret = parent, configured[parent].key
    except (KeyError, TypeError):
        raise GatewayUnreachable(f"the gateway at {url} gave no session key for /admin/sessions") from None

    argv = codex_args(cmd, url)
    env = session_env(dict(os.environ), url, session, secret, argv)
    budget = f", budget ${args.budget:.2f}" if args.budget is not None else ""
    print(f"agentdeck: session '{session}' via {url}{budget}"
          + (" (killed on emergency stop)" if args.kill_on_stop else ""), file=sys.stderr, flush=True)

    watcher: Callable[[int], None] | None = None
    if args.kill_on_stop:
        def watcher(pgid: int) -> None:
            _watch_for_stop(url, token, session, parent, pgid, args.kill_grace)
    try:
        return run_in_group(argv, env, watcher)
    except FileNotFoundError:
        raise AgentdeckError(f"run: command not found: {argv[0]}") from None
    except PermissionError:
        raise AgentdeckError(f"run: permission denied: {argv[0]}") from None


def _watch_for_stop(url: str, token: str, session: str, parent: str | None, pgid: int, grace_s: float) -> None:
    """Poll /admin/status every 200 ms; on a stop covering the session, end the process group."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=2.0, headers=headers) as client:
        while True:
            try:
                r = client.get(url + "/admin/status")
                reason = covers(r.json(), session, parent) if r.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                reason = None  # a gateway that is down is not a stop
            if reason is not None:
                break
            time.sleep(POLL_S)
    print(f"\nagentdeck: emergency stop ({reason}): terminating session '{session}'", file=sys.stderr, flush=True)
    terminate_group(pgid, grace_s)


def terminate_group(pgid: int, grace_s: float) -> None:
    """SIGTERM the group, then SIGKILL whatever is still alive after ``grace_s``."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _tty_fd() -> int | None:
    """stdin's fd if it is a terminal whose foreground group is ours (so we may hand it on)."""
    try:
        fd = sys.stdin.fileno()
        if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
            return fd
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _set_foreground(fd: int, pgid: int) -> None:
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may not otherwise do this
    try:
        os.tcsetpgrp(fd, pgid)
    except OSError:
        pass
    finally:
        signal.signal(signal.SIGTTOU, old)


def run_in_group(argv: list[str], env: dict[str, str], watcher: Callable[[int], None] | None = None) -> int:
    """Run ``argv`` in a new process group, forward SIGINT/SIGTERM/SIGHUP, return its exit code (128+N if killed)."""
    import subprocess

    tty = _tty_fd()

    def child_setup() -> None:  # runs in the child between fork and exec
        os.setpgid(0, 0)
        if tty is not None:
            signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            try:
                os.tcsetpgrp(tty, os.getpgrp())
            except OSError:
                pass
            signal.signal(signal.SIGTTOU, signal.SIG_DFL)  # ignored signals survive exec: restore it

    proc = subprocess.Popen(argv, env=env, preexec_fn=child_setup)  # noqa: PLW1509 (needed for the tty hand-off)
    pgid = proc.pid
    if tty is not None:
        _set_foreground(tty, pgid)

    def forward(signum: int, _frame: Any) -> None:
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            pass

    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, forward) for s in forwarded}
    if watcher is not None:
        threading.Thread(target=watcher, args=(pgid,), name="agentdeck-run-stop-watch", daemon=True).start()
    try:
        while True:
            _, status = os.waitpid(proc.pid, os.WUNTRACED)
            if os.WIFSTOPPED(status):
                # Ctrl-Z in the session: take the terminal back, suspend ourselves like a shell's job,
                # and when continued hand the terminal back and wake the session.
                if tty is not None:
                    _set_foreground(tty, os.getpgrp())
                os.kill(os.getpid(), signal.SIGSTOP)
                if tty is not None:
                    _set_foreground(tty, pgid)
                try:
                    os.killpg(pgid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
                continue
            break
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if tty is not None:
            _set_foreground(tty, os.getpgrp())
    proc.returncode = os.waitstatus_to_exitcode(status)
    code = proc.returncode
    return 128 - code if code < 0 else code
