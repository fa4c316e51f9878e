-- The inventory service: stock per item, and every reservation and release with its lines.
CREATE TABLE IF NOT EXISTS stock (
    item_id   TEXT PRIMARY KEY,
    available BIGINT NOT NULL CHECK (available >= 0)
);
CREATE TABLE IF NOT EXISTS inventory_transactions (
    transaction_id   TEXT PRIMARY KEY,
    order_id         TEXT NOT NULL,
    transaction_type TEXT NOT NULL,
    transaction_date TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inventory_transactions_by_order ON inventory_transactions (order_id);
CREATE TABLE IF NOT EXISTS inventory_lines (
    transaction_id TEXT NOT NULL,
    item_id        TEXT NOT NULL,
    qty            BIGINT NOT NULL,
    PRIMARY KEY (transaction_id, item_id)
);
