//! The stores on real databases: one binary, one module a topic.
//!
//! | module | what it shows |
//! |---|---|
//! | `stores` | each local transaction is idempotent and race-free on SQLite |
//! | `postgres` | the same on PostgreSQL (the machine's server, a database of the test's own) |

mod postgres;
mod stores;
