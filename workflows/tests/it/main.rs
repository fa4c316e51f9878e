//! The order saga's integration tests (no server): every recorded history replays.
//!
//! | module | what it shows |
//! |---|---|
//! | `replay` | each history under `tests/histories/` replays on the current code, on both dispatch settings |

mod replay;
