-- Flaky-test history: one row per `agentdeck flaky` session, its verdicts, and every run of every test.

CREATE TABLE flaky_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    project TEXT NOT NULL,            -- absolute path of the project directory
    pytest_args TEXT NOT NULL,        -- JSON list
    runs INTEGER NOT NULL,            -- same-order runs requested (--runs)
    engine TEXT NOT NULL,
    workers INTEGER NOT NULL,
    seed INTEGER NOT NULL,            -- master seed: shuffles and per-run seeds derive from it
    diagnosed INTEGER NOT NULL DEFAULT 1,
    duration_s REAL NOT NULL,
    n_tests INTEGER NOT NULL,
    n_stable INTEGER NOT NULL,
    n_flaky INTEGER NOT NULL,
    n_broken INTEGER NOT NULL,
    report_json TEXT NOT NULL         -- the --json document, as written
);
CREATE INDEX flaky_sessions_project ON flaky_sessions (project, started_at);

CREATE TABLE flaky_tests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    nodeid TEXT NOT NULL,
    UNIQUE (project, nodeid)
);

CREATE TABLE flaky_results (
    session_id INTEGER NOT NULL REFERENCES flaky_sessions (id) ON DELETE CASCADE,
    test_id INTEGER NOT NULL REFERENCES flaky_tests (id),
    runs INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    failure_rate REAL NOT NULL,
    ci_low REAL NOT NULL,
    ci_high REAL NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('stable', 'flaky', 'broken')),
    root_cause TEXT CHECK (root_cause IN ('timing', 'dependency', 'resource', 'state', 'randomness', 'unknown')),
    evidence TEXT NOT NULL,           -- JSON list of strings
    recommendation TEXT NOT NULL,
    culprit TEXT,                     -- polluter / state-setter node id for state
    PRIMARY KEY (session_id, test_id)
);
CREATE INDEX flaky_results_test ON flaky_results (test_id);

-- Every execution of every test: unperturbed runs (same-order, shuffled, isolated, alone,
-- continued) and experiments (bisect, confirm, contention, sandbox, ...).
CREATE TABLE flaky_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES flaky_sessions (id) ON DELETE CASCADE,
    test_id INTEGER NOT NULL REFERENCES flaky_tests (id),
    ts REAL NOT NULL,
    experiment TEXT NOT NULL,
    run INTEGER NOT NULL,
    position INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    phase TEXT,
    duration_s REAL NOT NULL,
    exc_type TEXT,
    errno INTEGER,
    message TEXT,
    location TEXT,
    seed INTEGER,
    order_seed INTEGER
);
CREATE INDEX flaky_runs_test_ts ON flaky_runs (test_id, ts);
CREATE INDEX flaky_runs_session ON flaky_runs (session_id);
