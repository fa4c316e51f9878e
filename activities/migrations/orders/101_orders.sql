-- The orders service: one row per order, its status New until compensated to Pending.
CREATE TABLE IF NOT EXISTS orders (
    order_id     TEXT PRIMARY KEY,
    customer_id  TEXT NOT NULL,
    order_date   TEXT NOT NULL,
    order_status TEXT NOT NULL,
    total_cents  BIGINT NOT NULL,
    document     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
