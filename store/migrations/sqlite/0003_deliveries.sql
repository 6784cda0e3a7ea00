-- Webhook deliveries already handled, so a replayed delivery creates nothing.
CREATE TABLE deliveries (
    forge TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (forge, delivery_id)
);
