-- `schedule:` triggers: the last tick each schedule of a product fired (or, for one not
-- fired yet, when it was first seen). Firing a tick moves it forward in the transaction that
-- creates the build, only if it is later: one build per tick, however many orchestrators.
CREATE TABLE schedules (
    product TEXT NOT NULL,
    key TEXT NOT NULL,
    last_tick BIGINT NOT NULL,
    PRIMARY KEY (product, key)
);
