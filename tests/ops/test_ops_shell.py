"""The shell: --version, completion scripts from the one parser (loaded and asked in bash), and the exit
codes scripts branch on (0 ok, 2 usage or config, 3 unreachable, 4 status while STOPPED)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from ops_support import ADMIN_TOKEN, Served, agentdeck

from agentdeck import __version__


def test_version(env: dict[str, str]) -> None:
    p = agentdeck(env, "--version")
    assert p.returncode == 0 and p.stdout.strip() == f"agentdeck {__version__}"


def _bash_complete(env: dict[str, str], line: str) -> list[str]:
    """Load the completion script into bash and ask it to complete ``line`` as if TAB were pressed."""
    words = line.split(" ")
    script = (
        "source <(agentdeck completion bash) || exit 9\n"
        "complete -p agentdeck >/dev/null || exit 8\n"
        f"COMP_LINE={line!r}; COMP_POINT={len(line)}; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
        f"COMP_CWORD={len(words) - 1}\n"
        f"_python_argcomplete agentdeck {words[-1]!r} {words[-2]!r}\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n')
    p = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return [w.strip() for w in p.stdout.splitlines() if w.strip()]


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("agentdeck") is None, reason="needs bash and the script")
def test_bash_completion_loads_and_completes_commands_and_flags(env: dict[str, str]) -> None:
    assert set(_bash_complete(env, "agentdeck sta")) == {"status", "statusline"}
    assert "--log-format" in _bash_complete(env, "agentdeck serve --log")
    assert set(_bash_complete(env, "agentdeck completion ")) >= {"bash", "zsh", "fish"}


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_load(env: dict[str, str], shell: str) -> None:
    p = agentdeck(env, "completion", shell)
    assert p.returncode == 0 and "agentdeck" in p.stdout
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed; the script was generated but not loaded")
    load = ("autoload -U compinit && compinit -u; source /dev/stdin" if shell == "zsh" else "source -")
    r = subprocess.run([shell, "-c", load], input=p.stdout, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_exit_codes(tmp_path: Path, env: dict[str, str], config: Path) -> None:
    assert agentdeck(env, "route", "--json", "fix a typo").returncode == 0
    bad_flag = agentdeck(env, "status", "--bogus")
    assert bad_flag.returncode == 2 and "Traceback" not in bad_flag.stderr
    bad_cfg = tmp_path / "bad.toml"
    bad_cfg.write_text("[budget]\nhourly_usd = 'lots'\n")
    assert agentdeck(env, "status", "--config", str(bad_cfg)).returncode == 2
    nowhere = tmp_path / "nowhere.toml"
    nowhere.write_text("[gateway]\nport = 1\n")
    gone = agentdeck(env, "status", "--config", str(nowhere))
    assert gone.returncode == 3 and "cannot reach the gateway" in gone.stderr and len(gone.stderr.splitlines()) == 1

    s = Served(["--config", str(config), "--quiet"], env, tmp_path / "logs")
    try:
        admin = {**env, "AGENTDECK_ADMIN_TOKEN": ADMIN_TOKEN}
        assert agentdeck(admin, "status", "--url", s.url).returncode == 0
        assert agentdeck(admin, "stop", "--reason", "exit code test", "--url", s.url).returncode == 0
        stopped = agentdeck(admin, "status", "--url", s.url)
        assert stopped.returncode == 4 and stopped.stdout.startswith("STOPPED")
        assert agentdeck(admin, "status", "--json", "--url", s.url).returncode == 4
        refused = agentdeck({**env, "AGENTDECK_ADMIN_TOKEN": "wrong"}, "status", "--url", s.url)
        assert refused.returncode == 2 and "refused the admin token" in refused.stderr
    finally:
        s.stop()
