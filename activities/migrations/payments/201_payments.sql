-- The payments service: an append-only ledger keyed by the deterministic transaction id.
CREATE TABLE IF NOT EXISTS payments (
    transaction_id   TEXT PRIMARY KEY,
    order_id         TEXT NOT NULL,
    merchant_id      TEXT NOT NULL,
    payment_type     TEXT NOT NULL,
    amount_cents     BIGINT NOT NULL,
    transaction_date TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_by_order ON payments (order_id);
