//! The webhook relay on real databases and a real HTTP receiver: one binary.
//!
//! | module | what it shows |
//! |---|---|
//! | `delivery` | two relays on one outbox claim each row once; a crashed relay's lease; retries to dead; resending |

mod delivery;
