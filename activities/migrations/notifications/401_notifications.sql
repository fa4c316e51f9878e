-- The notifications service: an outbox with one row per order and outcome.
CREATE TABLE IF NOT EXISTS notifications (
    order_id     TEXT NOT NULL,
    status       TEXT NOT NULL,
    error        TEXT,
    created_at   TEXT NOT NULL,
    delivered_at TEXT,
    PRIMARY KEY (order_id, status)
);
