-- Registered runners. A runner registers with the fleet registration token and gets a
-- token of its own; only its SHA-256 is stored.
CREATE TABLE runners (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    fleets TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    last_seen_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
