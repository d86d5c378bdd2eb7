-- Requests are also the spend ledger: a window's spend is the sum of cost_usd in it.
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    key TEXT NOT NULL,
    session TEXT,
    protocol TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    model_requested TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    tier TEXT,
    rule TEXT,
    status INTEGER NOT NULL,
    stream INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    baseline_cost_usd REAL NOT NULL DEFAULT 0,
    latency_ms REAL NOT NULL DEFAULT 0,
    estimated INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 1,
    fallback_from TEXT,
    escalations TEXT,
    request_body TEXT,
    response_body TEXT
);
CREATE INDEX requests_ts ON requests (ts);
CREATE INDEX requests_key_ts ON requests (key, ts);

-- Every stop and resume: when, who, why. The newest row per key is the current state.
CREATE TABLE stop_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    stopped INTEGER NOT NULL,
    reason TEXT,
    key TEXT,
    actor TEXT NOT NULL
);

CREATE TABLE alerts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    severity TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    key TEXT
);
CREATE INDEX alerts_ts ON alerts (ts);

CREATE TABLE limit_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    provider TEXT NOT NULL,
    rps_limit REAL NOT NULL,
    slots_limit INTEGER NOT NULL,
    reason TEXT NOT NULL
);
