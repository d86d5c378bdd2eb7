"""`agentdeck run [--key NAME] [--budget USD] [--timeout DUR] [--max-requests N] [--kill-on-stop] -- CMD ARGS...`.

A dev session through the gateway.

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

The two cost-protection layers the gateway cannot see by itself live here too: `--timeout DUR`
is the job-level deadline (at it, the session's key is stopped at the gateway with the reason,
so the stop history records why and stray children cannot spend; then the process group gets
SIGTERM and, after `--kill-grace`, SIGKILL; the run exits 124, as timeout(1) does), and
`--max-requests N` is the sample limit (the gateway refuses the session's calls past N with 403
`session_request_limit` and `x-should-retry: false`).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

# Codex subcommands after which the provider overrides go (`codex exec -c ... "prompt"`).
_CODEX_SUBCOMMANDS = frozenset({"exec", "e", "resume", "review"})
CODEX_PROVIDER = "agentdeck"
SESSION_KEY_ENV = "AGENTDECK_SESSION_KEY"
DEFAULT_GRACE_S = 5.0
POLL_S = 0.2
TIMEOUT_EXIT = 124  # what timeout(1) exits with when the deadline ended the command
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d)")


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run", parents=parents,
        help="run a dev session (Claude Code, Codex, Gemini CLI, aider, an SDK script) through the gateway",
        description="Run CMD with ANTHROPIC_BASE_URL, OPENAI_BASE_URL and a session key of its own pointed at the "
                    "gateway. Example: agentdeck run --budget 5 -- claude",
    )
    p.add_argument("--key", metavar="NAME",
                   help="a configured key to charge (the session is created under it), or a name for the session")
    p.add_argument("--budget", type=float, metavar="USD", help="this session's own budget in USD (rolling 24 h)")
    p.add_argument("--timeout", metavar="DUR",
                   help="end CMD's process group at this deadline (e.g. 90s, 15m, 1h30m; a bare number is seconds): "
                        "the session is stopped at the gateway with the reason, then SIGTERM, SIGKILL after "
                        "--kill-grace; exits 124")
    p.add_argument("--max-requests", type=int, metavar="N",
                   help="the gateway refuses this session's calls past N (403 session_request_limit)")
    p.add_argument("--kill-on-stop", action="store_true",
                   help="terminate CMD's process group when an emergency stop covers this session")
    p.add_argument("--kill-grace", type=float, default=DEFAULT_GRACE_S, metavar="S",
                   help=f"seconds between SIGTERM and SIGKILL with --kill-on-stop or --timeout "
                        f"(default {DEFAULT_GRACE_S:g})")
    p.add_argument("--url", metavar="U", help="gateway URL (default: the local gateway, then the config's host:port)")
    p.add_argument("--statusline", action="store_true",
                   help="Claude Code: show `agentdeck statusline` (LIVE/STOPPED, spend, this session's spend) in its "
                        "status line for this session (passed as --settings; your settings files are not changed)")
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
        "GOOGLE_GEMINI_BASE_URL": url,  # Gemini CLI and the google-genai SDKs (they add /v1beta or /v1)
        "GEMINI_API_KEY": secret,  # sent as x-goog-api-key
    })
    # google-genai prefers GOOGLE_API_KEY over GEMINI_API_KEY: an inherited one would be the user's real key.
    env.pop("GOOGLE_API_KEY", None)
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
    elif command_name(cmd) == "gemini":
        # Gemini CLI takes GOOGLE_GEMINI_BASE_URL as its "gateway" auth type, which a headless run refuses
        # ("Invalid auth method selected"); the API-key type comes from a system-defaults file shipped with
        # agentdeck (the lowest layer: the user's own settings still win; no settings file is written).
        env.setdefault("GEMINI_CLI_SYSTEM_DEFAULTS_PATH", str(Path(__file__).with_name("gemini_system_defaults.json")))
        env.setdefault("GEMINI_CLI_TRUST_WORKSPACE", "true")  # a headless run cannot answer the trust prompt
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


def parse_duration(text: str) -> float:
    """Seconds in a duration: ``90``, ``90s``, ``15m``, ``1h30m``, ``1.5h``, ``500ms``, ``2d``. ValueError if malformed."""
    t = text.strip().lower().replace(" ", "")
    if not t:
        raise ValueError("empty duration")
    try:
        seconds = float(t)
    except ValueError:
        pos, seconds = 0, 0.0
        for m in _DURATION.finditer(t):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(t) or pos == 0:
            raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 1h30m)") from None
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"must be a positive duration, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """``900`` -> ``15m``, ``5400`` -> ``1h30m``, ``2.5`` -> ``2.5s``: how the exit message names a deadline."""
    if seconds < 60 or seconds != int(seconds):
        return f"{seconds:g}s"
    out, rest = "", int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out


def timeout_reason(seconds: float) -> str:
    """The reason recorded at the gateway (stop history) and printed when the deadline ends a session."""
    return f"timeout: agentdeck run --timeout {format_duration(seconds)} reached"


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
    timeout_s: float | None = None
    if args.timeout is not None:
        try:
            timeout_s = parse_duration(args.timeout)
        except ValueError as e:
            raise AgentdeckError(f"--timeout: {e}") from None
    if args.max_requests is not None and args.max_requests < 1:
        raise AgentdeckError("--max-requests: must be a positive number of calls")

    import shutil

    if shutil.which(cmd[0]) is None:  # before asking the gateway for a session nobody would use
        raise AgentdeckError(f"run: command not found: {cmd[0]}")
    cfg = config_from(args)
    url, token = gateway_target(cfg, args.url)
    configured = {k.name: k for k in cfg.keys}
    parent = args.key if args.key in configured else None
    wanted = args.key if (args.key and parent is None) else default_session_name(cmd, parent)
    body: dict[str, Any] = {"name": wanted, "budget_usd": args.budget, "key": parent}
    if args.max_requests is not None:
        body["max_requests"] = args.max_requests
    try:
        created = admin_request(url, token, "POST", "/admin/sessions", body)
        session, secret = str(created["session"]), str(created["key"])
    except GatewayUnreachable as e:
        if parent is None or args.budget is not None or args.max_requests is not None or "answered 404" not in str(e):
            raise
        # A gateway without sessions: fall back to the configured key's own secret.
        session, secret = parent, configured[parent].key
    except (KeyError, TypeError):
        raise GatewayUnreachable(f"the gateway at {url} gave no session key for /admin/sessions") from None

    if args.max_requests is not None and created.get("max_requests") != args.max_requests:
        # A limit the gateway did not confirm is not enforced: refuse to run rather than run unlimited.
        raise AgentdeckError(f"--max-requests: the gateway at {url} did not confirm the limit of {args.max_requests} "
                             f"requests (it answered max_requests={created.get('max_requests')!r}); not starting "
                             f"'{cmd[0]}' without it")

    argv = codex_args(cmd, url)
    if args.statusline and command_name(argv) == "claude" and "--settings" not in argv:
        from agentdeck.cli.statusline import claude_settings_json

        argv = [argv[0], "--settings", claude_settings_json(), *argv[1:]]
    env = session_env(dict(os.environ), url, session, secret, argv)
    extras = [f"budget ${args.budget:.2f}"] if args.budget is not None else []
    if timeout_s is not None:
        extras.append(f"timeout {format_duration(timeout_s)}")
    if args.max_requests is not None:
        extras.append(f"at most {args.max_requests} requests")
    print(f"agentdeck: session '{session}' via {url}" + "".join(f", {x}" for x in extras)
          + (" (killed on emergency stop)" if args.kill_on_stop else ""), file=sys.stderr, flush=True)

    ending = threading.Event()  # set once the deadline fired: the stop it records is ours, not an emergency
    watchers: list[Callable[[int], None]] = []
    if args.kill_on_stop:
        watchers.append(lambda pgid: _watch_for_stop(url, token, session, parent, pgid, args.kill_grace, ending))
    if timeout_s is not None:
        deadline_s = timeout_s
        watchers.append(lambda pgid: _end_at_deadline(url, token, session, pgid, deadline_s, args.kill_grace, ending))
    try:
        code = run_in_group(argv, env, watchers)
    except FileNotFoundError:
        raise AgentdeckError(f"run: command not found: {argv[0]}") from None
    except PermissionError:
        raise AgentdeckError(f"run: permission denied: {argv[0]}") from None
    if ending.is_set():
        print(f"agentdeck: session '{session}' ended: {timeout_reason(timeout_s or 0)} "
              f"(command exit {code}); exit {TIMEOUT_EXIT}", file=sys.stderr, flush=True)
        return TIMEOUT_EXIT
    return code


def _end_at_deadline(url: str, token: str, session: str, pgid: int, timeout_s: float, grace_s: float,
                     ending: threading.Event) -> None:
    """At the deadline: stop the session's key at the gateway with the reason (recorded), then end the group.

    The stop comes first so a child that escaped the group (setsid, a daemon) cannot spend on
    the session's key after its deadline; the gateway's stop history is the durable record of why.
    """
    import httpx

    time.sleep(timeout_s)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return  # it finished on its own in time
    ending.set()
    reason = timeout_reason(timeout_s)
    print(f"\nagentdeck: {reason}: ending session '{session}' (SIGTERM, SIGKILL after {grace_s:g}s)",
          file=sys.stderr, flush=True)
    try:
        r = httpx.post(url + "/admin/stop", json={"reason": reason, "key": session, "actor": "cli"},
                       headers={"Authorization": f"Bearer {token}"}, timeout=2.0)
        recorded = r.status_code == 200
    except httpx.HTTPError:
        recorded = False
    if not recorded:
        print(f"agentdeck: could not record the timeout at the gateway {url}; ending the session anyway",
              file=sys.stderr, flush=True)
    terminate_group(pgid, grace_s)


def _watch_for_stop(url: str, token: str, session: str, parent: str | None, pgid: int, grace_s: float,
                    ending: threading.Event | None = None) -> None:
    """Poll /admin/status every 200 ms; on a stop covering the session, end the process group."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=2.0, headers=headers) as client:
        while True:
            if ending is not None and ending.is_set():
                return  # the deadline is ending the session (and its own stop would look like an emergency)
            try:
                r = client.get(url + "/admin/status")
                reason = covers(r.json(), session, parent) if r.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                reason = None  # a gateway that is down is not a stop
            if reason is not None:
                break
            time.sleep(POLL_S)
    if ending is not None and ending.is_set():
        return
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


def run_in_group(argv: list[str], env: dict[str, str], watchers: Sequence[Callable[[int], None]] = ()) -> int:
    """Run ``argv`` in a new process group, forward SIGINT/SIGTERM/SIGHUP, return its exit code (128+N if killed).

    Each of ``watchers`` runs on a daemon thread with the group's id (the stop watch, the deadline).
    """
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
    for i, watcher in enumerate(watchers):
        threading.Thread(target=watcher, args=(pgid,), name=f"agentdeck-run-watch-{i}", daemon=True).start()
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
