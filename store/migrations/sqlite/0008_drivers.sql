-- Drivers (docs/drivers.md). A driver instance is stored as a runner of the one fleet
-- `driver:NAME` (its own token, its liveness); this table keeps what a driver says of
-- itself: the resource types it listens to (JSON array), from its latest registration.
CREATE TABLE drivers (
    name TEXT PRIMARY KEY,
    resources TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- What started a build, when a resource did: the resource (JSON text) and the event
-- (`create`, `update` or `delete`); NULL for other builds, whose event reads as `create`.
ALTER TABLE builds ADD COLUMN resource TEXT;
ALTER TABLE builds ADD COLUMN event TEXT;

-- A driver's log line keeps the labels it was logged with (JSON object), NULL for others.
ALTER TABLE log_lines ADD COLUMN labels TEXT;
