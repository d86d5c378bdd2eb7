-- `agentdeck run` sessions, so a restarted gateway still knows their keys. Only a SHA-256 of each
-- session secret is stored, never the secret itself.
CREATE TABLE sessions (
    name TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    parent_key TEXT,
    budget_usd REAL,
    created REAL NOT NULL
);
