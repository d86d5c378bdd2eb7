"""`agentdeck diagnose` end to end, each command in a fresh process against a temp config and database."""

from __future__ import annotations

import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from agentdeck.diagnose.second_opinion import ask_gateway
from agentdeck.store import db_path


def test_log_list_export_round_trip_across_processes(cli: Any, data_dir: Path) -> None:
    r = cli("diagnose", "log", "--error", "LLM stores passwords in plain text", "--category", "rules",
            "--fix", "Added security rule to CLAUDE.md", "--root-cause", "CLAUDE.md didn't specify hashing",
            "--verification", "Re-ran auth feature generation, confirmed password hashing",
            "--result", "✓ All future auth code includes bcrypt hashing", "--seconds", "240")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "logged #1: Rules Problem (CLAUDE.md didn't specify hashing)"
    r = cli("diagnose", "log", "--error", "Code compiles but violates architecture", "--category", "Quality Gate",
            "--fix", "AST-grep rule: no db calls in route handlers", "--also", "rules", "--json")
    assert r.returncode == 0, r.stderr
    second = json.loads(r.stdout)
    assert second["id"] == 2 and second["category"] == "quality_gate" and second["also"] == ["rules"]
    assert db_path(data_dir).exists(), "the entries live in the configured data dir's database"

    listed = json.loads(cli("diagnose", "list", "--json").stdout)
    assert [e["id"] for e in listed["entries"]] == [2, 1]  # newest first
    first = listed["entries"][1]
    assert first["error"] == "LLM stores passwords in plain text" and first["outcome"] == "stuck"
    assert first["diagnose_seconds"] == 240

    md = cli("diagnose", "export", "--format", "md")
    assert md.returncode == 0, md.stderr
    assert "| Date | Error | Root Cause | Fix Applied | Verification | Result |" in md.stdout
    assert "| LLM stores passwords in plain text | Rules Problem (CLAUDE.md didn't specify hashing) |" in md.stdout
    assert "**Result**: ✓ All future auth code includes bcrypt hashing" in md.stdout
    exported = json.loads(cli("diagnose", "export", "--format", "json").stdout)
    assert [e["id"] for e in exported["entries"]] == [1, 2] and exported["stats"]["total"] == 2

    r = cli("diagnose", "result", "2", "recurred", "--note", "✗ came back in the admin routes")
    assert r.returncode == 0 and r.stdout.strip() == "#2: ✗ came back in the admin routes"
    stats = json.loads(cli("diagnose", "stats", "--json").stdout)
    assert stats["recurrence_rate"] == 0.5 and stats["by_category"]["quality_gate"] == 1


def run_in_process(args: list[str], capsys: Any) -> tuple[int, str, str]:
    """The same dispatcher in this process: for the cheap checks that need no fresh interpreter."""
    from agentdeck.cli import main

    try:
        code = main(args)
    except SystemExit as e:  # argparse errors
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_plain_output_show_stats_and_export_to_a_file(config_file: Path, data_dir: Path, capsys: Any) -> None:
    cfg = ["--config", str(config_file)]
    for error, cat in (("Wrong API version used", "context"), ("Code compiles but violates architecture", "gate")):
        assert run_in_process(["diagnose", "log", *cfg, "--error", error, "--category", cat, "--fix", "f"], capsys)[0] == 0
    run_in_process(["diagnose", "result", *cfg, "1", "stuck"], capsys)
    code, out, _ = run_in_process(["diagnose", "list", *cfg], capsys)
    assert code == 0 and "Wrong API version used" in out and "✓ Stuck" in out
    code, out, _ = run_in_process(["diagnose", "stats", *cfg], capsys)
    assert "recurrence rate: 0%" in out and "Quality Gate" in out
    code, out, _ = run_in_process(["diagnose", "show", *cfg, "2"], capsys)
    assert "**Root Cause**: Quality Gate Problem" in out
    target = data_dir / "log.md"
    code, out, _ = run_in_process(["diagnose", "export", *cfg, "--output", str(target)], capsys)
    assert code == 0 and target.read_text(encoding="utf-8").startswith("# Error Diagnostic Log\n")
    code, out, _ = run_in_process(["diagnose", "framework", *cfg, "--json"], capsys)
    assert [c["key"] for c in json.loads(out)["categories"]] == ["context", "model", "rules", "testing", "quality_gate"]
    code, out, _ = run_in_process(["diagnose", "list", *cfg, "--json", "--category", "context"], capsys)
    assert [e["id"] for e in json.loads(out)["entries"]] == [1]


def test_a_similar_error_logged_later_is_a_recurrence(cli: Any, conn: sqlite3.Connection) -> None:
    assert cli("diagnose", "log", "--error", "Uses hard delete instead of soft delete", "--category", "rules",
               "--fix", "soft-delete rule").returncode == 0
    r = cli("diagnose", "log", "--error", "The agent hard-deleted invoices instead of soft delete",
            "--category", "rules", "--fix", "rule with DO NOT list")
    assert r.returncode == 0
    assert "recurrence of #1" in r.stdout
    rows = {row["id"]: row for row in conn.execute("SELECT id, outcome, recurrence_of FROM diagnoses")}
    assert rows[1]["outcome"] == "recurred" and rows[2]["recurrence_of"] == 1


def test_suggest_json_matches_the_contract(cli: Any) -> None:
    r = cli("diagnose", "suggest", "--json", "Passes unit tests but fails integration")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(d) == {"category", "confidence", "why"}
    assert d["category"] == "testing" and isinstance(d["confidence"], float) and all(isinstance(w, str) for w in d["why"])
    r = cli("diagnose", "suggest", "--json", "-", input="Code compiles but violates architecture\n")
    assert json.loads(r.stdout)["category"] == "quality_gate"


def test_suggest_plain_output_names_the_category_and_reasons(capsys: Any, config_file: Path) -> None:
    code, out, _ = run_in_process(["diagnose", "suggest", "--config", str(config_file), "Uses", "hard", "delete",
                                   "instead", "of", "soft", "delete"], capsys)
    assert code == 0 and "Suggested root cause: Rules" in out and '"hard delete"' in out


def test_bad_input_in_a_real_process_is_one_line_without_traceback(cli: Any) -> None:
    r = cli("diagnose", "log", "--error", "x", "--category", "vibes", "--fix", "y")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == ("agentdeck: error: unknown category 'vibes'; use one of: context, model, rules, testing, "
                        "quality_gate\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["diagnose", "log", "--error", "  ", "--category", "rules", "--fix", "y"],
         "agentdeck: error: the error description is empty"),
        (["diagnose", "suggest", " "], "agentdeck: error: the error text is empty"),
        (["diagnose", "result", "42", "stuck"], "agentdeck: error: no diagnosis #42"),
        (["diagnose", "export", "--format", "pdf"], "invalid choice: 'pdf'"),
        (["diagnose", "log", "--error", "x"], "the following arguments are required: --category, --fix"),
        (["diagnose", "list", "--category", "vibes"], "agentdeck: error: unknown category 'vibes'"),
        (["diagnose", "--project", "/nonexistent/dir"], "agentdeck: error: /nonexistent/dir: not a directory"),
    ],
)
def test_bad_input_is_one_clear_line(config_file: Path, capsys: Any, args: list[str], message: str) -> None:
    code, _, err = run_in_process([*args, "--config", str(config_file)] if args[1] != "--project" else
                                  ["diagnose", "--config", str(config_file), *args[1:]], capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_config_flag_works_before_and_after_the_command(tmp_path: Path, capsys: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other"
    cfg = tmp_path / "other.toml"
    cfg.write_text(f'[gateway]\ndata_dir = "{other}"\n')
    monkeypatch.setenv("AGENTDECK_CONFIG", str(tmp_path / "missing.toml"))  # fails if --config were ignored
    for args in (["--config", str(cfg), "diagnose", "log"], ["diagnose", "--config", str(cfg), "log"],
                 ["diagnose", "log", "--config", str(cfg)]):
        code, _, err = run_in_process([*args, "--error", "Wrong API version used", "--category", "context",
                                       "--fix", "pin it"], capsys)
        assert code == 0, (args, err)
    code, out, _ = run_in_process(["diagnose", "list", "--json", "--config", str(cfg)], capsys)
    assert len(json.loads(out)["entries"]) == 3


def test_terminal_wizard_walk_through_piped_answers(cli: Any, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "CLAUDE.md").write_text("# Project\n\n## Rules\n\n- Times are UTC\n")
    answers = "\n".join([
        "Uses hard delete instead of soft delete",  # the error
        "",            # examine the suggested category (rules)
        "y",           # answer its questions
        "n", "n", "y",  # no rule, no DO NOT list, had the code in context -> confirms rules
        "y",           # take rules as the root cause
        "", "quality_gate",  # primary stays rules; also quality gate
        "soft delete is an audit requirement",
        "1,3",         # rules-explicit + gate-lint
        "",            # nothing else changed
        "", "Regenerated the delete endpoint; it sets deleted_at",
        "y", "Delete rows by setting deleted_at", "user.deleted_at = now()", "DELETE FROM users",
        "y",           # write the previewed change
        "",            # result later
    ]) + "\n"
    r = cli("diagnose", "--project", str(project), input=answers)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Suggested root cause: Rules" in r.stdout
    assert "+- Delete rows by setting deleted_at" in r.stdout, "the diff is shown before writing"
    assert "Saved diagnosis #1" in r.stdout
    claude = (project / "CLAUDE.md").read_text()
    assert claude.startswith("# Project\n\n## Rules\n\n- Times are UTC\n- Delete rows by setting deleted_at\n")
    assert "  - DO NOT: DELETE FROM users" in claude
    entry = json.loads(cli("diagnose", "show", "1", "--json").stdout)
    assert entry["category"] == "rules" and entry["also"] == ["quality_gate"]
    assert entry["fix_ids"] == ["rules-explicit", "gate-lint"]
    assert entry["fix"].endswith("rule appended to CLAUDE.md")
    assert entry["verification"] == "Regenerated the delete endpoint; it sets deleted_at"
    assert entry["source"] == "wizard" and entry["suggested"] == "rules" and entry["diagnose_seconds"] >= 0


def test_terminal_wizard_reports_ended_input_without_saving(cli: Any) -> None:
    r = cli("diagnose", "--error", "Wrong API version used", input="\n\ny\n")
    assert r.returncode == 2
    assert "input ended before the diagnosis was saved" in r.stderr and "Traceback" not in r.stderr
    assert json.loads(cli("diagnose", "list", "--json").stdout)["entries"] == []


def test_rule_subcommand_shows_the_diff_and_writes_only_when_confirmed(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("# Agents\n")
    args = ["diagnose", "rule", "--project", str(tmp_path), "--rule", "Verify webhook signatures",
            "--example", "stripe.Webhook.construct_event(body, sig, secret)", "--do-not", "json.loads(body) unverified"]
    r = cli(*args)  # no terminal to confirm: print, do not write
    assert r.returncode == 1 and "+- Verify webhook signatures" in r.stdout
    assert (tmp_path / "AGENTS.md").read_text() == "# Agents\n"
    r = cli(*args, "--yes")
    assert r.returncode == 0 and "appended the rule to" in r.stdout
    assert "  - DO NOT: json.loads(body) unverified" in (tmp_path / "AGENTS.md").read_text()
    assert "already has this rule" in cli(*args, "--yes").stdout


# -- the optional second opinion, against a real local HTTP server --------------------------------
class _Gateway(BaseHTTPRequestHandler):
    answer: Any = None
    status = 200
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).seen.append({"path": self.path, "auth": self.headers.get("authorization"), "body": body})
        payload = json.dumps(type(self).answer).encode()
        self.send_response(type(self).status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[tuple[str, type[_Gateway]]]:
    handler = type("H", (_Gateway,), {"seen": [], "status": 200, "answer": None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def _completion(content: str) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion", "model": "claude-haiku-4-5",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}


def test_second_opinion_asks_the_fast_tier_with_a_small_budget(gateway: tuple[str, Any]) -> None:
    url, h = gateway
    h.answer = _completion('Sure: {"category": "quality-gate", "why": "a linter would catch the import"}')
    op = ask_gateway(url + "/v1", "sk-dev", "Route handler imports the db module")
    assert op is not None and op.category == "quality_gate" and op.why == "a linter would catch the import"
    assert op.model == "claude-haiku-4-5"
    req = h.seen[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-dev"
    assert req["body"]["model"] == "fast" and req["body"]["max_tokens"] <= 200


@pytest.mark.parametrize(
    ("status", "answer"),
    [(403, {"error": {"message": "stopped", "type": "agentdeck_stopped"}}), (200, _completion("no idea")),
     (200, _completion('{"category": "vibes"}')), (200, {"unexpected": True})],
)
def test_second_opinion_is_none_on_any_failure(gateway: tuple[str, Any], status: int, answer: Any) -> None:
    url, h = gateway
    h.status, h.answer = status, answer
    assert ask_gateway(url, "k", "x") is None


def test_second_opinion_unreachable_gateway_is_none_quickly() -> None:
    import socket
    import time

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    t = time.perf_counter()
    assert ask_gateway(f"http://127.0.0.1:{port}", "k", "x", timeout=1.0) is None
    assert time.perf_counter() - t < 3


def test_suggest_cli_with_second_opinion(cli: Any, gateway: tuple[str, Any]) -> None:
    url, h = gateway
    h.answer = _completion('{"category": "rules", "why": "deletion policy"}')
    r = cli("diagnose", "suggest", "--json", "--second-opinion", "--url", url, "Uses hard delete",
            env={"AGENTDECK_KEY": "sk-test"})
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["category"] == "rules" and d["second_opinion"] == {
        "category": "rules", "why": "deletion policy", "model": "claude-haiku-4-5"}
    assert h.seen[0]["auth"] == "Bearer sk-test"
    # Off unless asked: no call, no extra key.
    r = cli("diagnose", "suggest", "--json", "Uses hard delete")
    assert "second_opinion" not in json.loads(r.stdout) and len(h.seen) == 1
