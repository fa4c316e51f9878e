-- Webhook delivery of the outbox (see activities/src/delivery): the order summary a notification
-- carries, and one row per notification and subscriber with its delivery state. Times that the
-- relay compares in SQL are epoch milliseconds (BIGINT), which SQLite and PostgreSQL order alike;
-- the others are RFC 3339 text like every other store's.
ALTER TABLE notifications ADD COLUMN summary TEXT;

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    delivery_id     TEXT PRIMARY KEY,
    order_id        TEXT NOT NULL,
    status          TEXT NOT NULL,
    subscriber      TEXT NOT NULL,
    -- pending | delivered | dead
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    -- The relay (and claim) holding the row, until lease_until_ms.
    lease_owner     TEXT,
    lease_until_ms  BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    last_attempt_at TEXT,
    delivered_at    TEXT,
    dead_at         TEXT,
    created_at      TEXT NOT NULL,
    UNIQUE (order_id, status, subscriber)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (state, next_attempt_ms);
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_lease ON webhook_deliveries (lease_owner);
