//! The key ring: which AES-256 keys this process holds, and which one encrypts.
//!
//! | setting                     | holds                                                    |
//! |-----------------------------|----------------------------------------------------------|
//! | `SAGA_ENCRYPTION_KEYS_FILE` | path of a file of lines `KEY_ID BASE64_OF_32_BYTES`      |
//! | `SAGA_ENCRYPTION_KEYS`      | the same lines inline (newlines or commas between keys)  |
//!
//! The first key encrypts; every key decrypts, so a new key goes on the first line and the old
//! ones stay below it until no saga in flight (and no history anyone must read) uses them.
//! Blank lines and lines starting with `#` are ignored. Keys never come from the command line,
//! where every user of the machine can read them in the process list, and no error message ever
//! repeats key material.

use aes_gcm::{Aes256Gcm, KeyInit as _};
use base64::Engine as _;
use std::{fmt, path::Path};

/// Names the file of keys.
pub const KEYS_FILE_ENV: &str = "SAGA_ENCRYPTION_KEYS_FILE";
/// Holds the keys inline.
pub const KEYS_ENV: &str = "SAGA_ENCRYPTION_KEYS";

/// Bytes in an AES-256 key.
pub const KEY_LEN: usize = 32;

/// A malformed key setting, located precisely and without echoing any key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{source_name}: line {line}: expected `KEY_ID BASE64_OF_32_BYTES`, found {found}")]
    Shape {
        source_name: String,
        line: usize,
        found: String,
    },
    #[error("{source_name}: line {line} (key `{id}`): the key is not valid base64: {reason}")]
    Base64 {
        source_name: String,
        line: usize,
        id: String,
        reason: String,
    },
    #[error(
        "{source_name}: line {line} (key `{id}`): the key is {len} bytes; AES-256 needs exactly {KEY_LEN} \
         (make one with `openssl rand -base64 32`)"
    )]
    Length {
        source_name: String,
        line: usize,
        id: String,
        len: usize,
    },
    #[error("{source_name}: line {line}: key id `{id}` is already used on line {first_line}")]
    Duplicate {
        source_name: String,
        line: usize,
        id: String,
        first_line: usize,
    },
    #[error("{source_name}: line {line}: key id `{id}` is too long (at most 64 bytes)")]
    IdTooLong {
        source_name: String,
        line: usize,
        id: String,
    },
    #[error("{source_name} holds no key; add a line `KEY_ID BASE64_OF_32_BYTES`")]
    Empty { source_name: String },
    #[error("cannot read {KEYS_FILE_ENV}={path}: {reason}")]
    Read { path: String, reason: String },
    #[error("both {KEYS_FILE_ENV} and {KEYS_ENV} are set; keep one")]
    Ambiguous,
}

/// One named key.
#[derive(Clone)]
pub struct Key {
    pub(crate) id: String,
    pub(crate) cipher: Aes256Gcm,
}

impl Key {
    /// A key from its id and its 32 raw bytes.
    pub fn new(id: impl Into<String>, bytes: &[u8; KEY_LEN]) -> Self {
        Self {
            id: id.into(),
            cipher: Aes256Gcm::new(bytes.into()),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The keys of one process, the encrypting one first. Never empty.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<Key>,
}

impl fmt::Debug for KeyRing {
    // Ids only: key material never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing").field("ids", &self.ids()).finish()
    }
}

impl KeyRing {
    /// A ring of `keys`, the first one encrypting; `None` for no keys.
    pub fn new(keys: Vec<Key>) -> Option<Self> {
        (!keys.is_empty()).then_some(Self { keys })
    }

    /// Reads `SAGA_ENCRYPTION_KEYS_FILE` or `SAGA_ENCRYPTION_KEYS`; `Ok(None)` when neither is
    /// set (encryption off).
    pub fn from_env() -> Result<Option<Self>, KeyError> {
        let file = non_empty_env(KEYS_FILE_ENV);
        let inline = non_empty_env(KEYS_ENV);
        match (file, inline) {
            (Some(_), Some(_)) => Err(KeyError::Ambiguous),
            (Some(path), None) => Self::from_file(Path::new(&path)).map(Some),
            (None, Some(text)) => Self::parse(&text.replace(',', "\n"), KEYS_ENV).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// Reads a keys file.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        warn_if_readable_by_others(path);
        Self::parse(&text, &format!("{KEYS_FILE_ENV}={}", path.display()))
    }

    /// Parses lines `KEY_ID BASE64_OF_32_BYTES`; `source_name` names the text in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, KeyError> {
        let mut keys: Vec<(usize, Key)> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = trimmed.split_whitespace().collect();
            let [id, encoded] = fields[..] else {
                return Err(KeyError::Shape {
                    source_name: source_name.to_owned(),
                    line,
                    found: match fields.len() {
                        1 => "one field (a key id or a key alone?)".to_owned(),
                        n => format!("{n} fields"),
                    },
                });
            };
            if id.len() > 64 {
                return Err(KeyError::IdTooLong {
                    source_name: source_name.to_owned(),
                    line,
                    id: format!("{}…", &id[..id.floor_char_boundary(16)]),
                });
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| KeyError::Base64 {
                    source_name: source_name.to_owned(),
                    line,
                    id: id.to_owned(),
                    reason: e.to_string(),
                })?;
            let bytes: [u8; KEY_LEN] =
                bytes.as_slice().try_into().map_err(|_| KeyError::Length {
                    source_name: source_name.to_owned(),
                    line,
                    id: id.to_owned(),
                    len: bytes.len(),
                })?;
            if let Some((first_line, _)) = keys.iter().find(|(_, k)| k.id == id) {
                return Err(KeyError::Duplicate {
                    source_name: source_name.to_owned(),
                    line,
                    id: id.to_owned(),
                    first_line: *first_line,
                });
            }
            keys.push((line, Key::new(id, &bytes)));
        }
        Self::new(keys.into_iter().map(|(_, k)| k).collect()).ok_or_else(|| KeyError::Empty {
            source_name: source_name.to_owned(),
        })
    }

    /// The key that encrypts new payloads.
    pub fn encrypting(&self) -> &Key {
        &self.keys[0]
    }

    /// The key named `id`, if this ring holds it.
    pub fn get(&self, id: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Every key id, the encrypting one first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Keys are secrets: say so when the file is open to other users of the machine.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                file = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the encryption keys file is readable by other users; `chmod 600` it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // bytes 0..32
    const K2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="; // bytes 32..64

    #[test]
    fn the_first_key_encrypts_and_every_key_is_found() {
        let ring = KeyRing::parse(&format!("# rotated in June\nnew {K2}\n\nold {K1}\n"), "t")
            .expect("valid keys");
        assert_eq!(ring.ids(), ["new", "old"]);
        assert_eq!(ring.encrypting().id(), "new");
        assert!(ring.get("old").is_some());
        assert!(ring.get("other").is_none());
        assert!(
            !format!("{ring:?}").contains(K1),
            "Debug must not show keys"
        );
    }

    #[test]
    fn malformed_keys_are_refused_by_line_without_showing_the_key() {
        let err = |text: &str| KeyRing::parse(text, "keys.txt").unwrap_err().to_string();

        let e = err(&format!("k1 {K1}\nk2\n"));
        assert!(
            e.contains("keys.txt: line 2") && e.contains("one field"),
            "{e}"
        );

        let e = err("k1 not-base64!!\n");
        assert!(
            e.contains("line 1 (key `k1`)") && e.contains("base64"),
            "{e}"
        );
        assert!(!e.contains("not-base64!!"), "{e}");

        let e = err("short AAECAwQFBgcICQoLDA0ODw==\n");
        assert!(e.contains("16 bytes") && e.contains("32"), "{e}");
        assert!(!e.contains("AAECAwQF"), "{e}");

        let e = err(&format!("k1 {K1}\nk1 {K2}\n"));
        assert!(
            e.contains("line 2") && e.contains("already used on line 1"),
            "{e}"
        );

        let e = err("# nothing but a comment\n\n");
        assert!(e.contains("holds no key"), "{e}");

        let e = err(&format!("k1 {K1} extra\n"));
        assert!(e.contains("3 fields"), "{e}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = KeyRing::from_file(Path::new("/nonexistent/keys.txt"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(KEYS_FILE_ENV) && e.contains("/nonexistent/keys.txt"),
            "{e}"
        );
    }
}
