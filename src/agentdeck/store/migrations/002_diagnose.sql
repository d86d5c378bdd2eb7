-- The error-diagnosis log: one row per diagnosed LLM error (the seed's log format plus what makes
-- the log measurable: time to diagnose, a fingerprint for recurrences, and the outcome of the fix).
CREATE TABLE diagnoses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,                       -- when the diagnosis was saved (unix seconds)
    error TEXT NOT NULL,                    -- what happened
    category TEXT NOT NULL CHECK (category IN ('context', 'model', 'rules', 'testing', 'quality_gate')),
    also TEXT NOT NULL DEFAULT '[]',        -- JSON list of secondary root causes (several fixes may apply)
    root_cause TEXT NOT NULL DEFAULT '',    -- the specific cause in words ("CLAUDE.md didn't specify hashing")
    fix TEXT NOT NULL,                      -- fix applied
    fix_ids TEXT NOT NULL DEFAULT '[]',     -- JSON list of framework fix ids chosen
    verification TEXT NOT NULL DEFAULT '',  -- how it was (or will be) confirmed
    result TEXT NOT NULL DEFAULT '',        -- did the fix stick, in words
    outcome TEXT NOT NULL DEFAULT 'pending' CHECK (outcome IN ('pending', 'stuck', 'recurred')),
    outcome_ts REAL,
    diagnose_seconds REAL,                  -- from starting the wizard to saving; NULL when logged directly
    suggested TEXT,                         -- the suggester's category, to measure how often it is right
    suggested_confidence REAL,
    fingerprint TEXT NOT NULL,              -- hash of the normalised error words
    signature TEXT NOT NULL,                -- the normalised words themselves, for similarity
    recurrence_of INTEGER REFERENCES diagnoses (id),
    source TEXT NOT NULL DEFAULT 'cli'      -- cli | wizard | console | request | flaky
);
CREATE INDEX diagnoses_ts ON diagnoses (ts);
CREATE INDEX diagnoses_fingerprint ON diagnoses (fingerprint);
