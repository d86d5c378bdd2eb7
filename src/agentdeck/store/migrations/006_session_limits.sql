-- `agentdeck run --max-requests N`: a session's request limit survives a gateway restart with the
-- session (the calls it already made are counted again from the requests table).
ALTER TABLE sessions ADD COLUMN max_requests INTEGER;
