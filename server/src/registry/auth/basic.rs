//! Basic auth against an htpasswd file of bcrypt entries (what `htpasswd -B` writes and
//! Docker's registry reads). bcrypt costs tens of milliseconds by design, so successful
//! verifications are remembered briefly, keyed by a salted hash of the credentials.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// How long a verified username/password pair is trusted without running bcrypt again.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// Entries kept at most; past it the expired ones go, then everything if need be.
const CACHE_MAX: usize = 4096;

/// The users of an htpasswd file and a short-lived cache of verified credentials.
#[derive(Clone)]
pub struct Htpasswd {
    inner: Arc<Inner>,
}

struct Inner {
    users: HashMap<String, String>,
    /// A real hash verified (and failed) for unknown users, so their answer takes as long
    /// as a wrong password and does not reveal which users exist.
    decoy: Option<String>,
    /// Per-process salt of the cache keys: a memory dump holds no plain SHA-256 of
    /// passwords to brute-force.
    salt: [u8; 16],
    verified: Mutex<HashMap<[u8; 32], Instant>>,
}

impl std::fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Htpasswd")
            .field("users", &self.inner.users.len())
            .finish_non_exhaustive()
    }
}

impl Htpasswd {
    /// Reads and parses an htpasswd file.
    pub fn load(path: &Path) -> Result<Htpasswd, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("reading htpasswd file {}: {err}", path.display()))?;
        Htpasswd::parse(&text).map_err(|err| format!("htpasswd file {}: {err}", path.display()))
    }

    /// Parses `user:hash` lines; blank lines and `#` comments are skipped. Only bcrypt
    /// hashes are accepted: the other htpasswd formats (MD5, SHA-1, crypt) are weak.
    pub fn parse(text: &str) -> Result<Htpasswd, String> {
        let mut users = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let number = index + 1;
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| format!("line {number}: expected `user:bcrypt-hash`"))?;
            if user.is_empty() {
                return Err(format!("line {number}: empty user name"));
            }
            bcrypt::HashParts::from_str(hash).map_err(|_| {
                format!("line {number} (user {user:?}): not a bcrypt hash; create it with `htpasswd -B`")
            })?;
            if users.insert(user.to_owned(), hash.to_owned()).is_some() {
                return Err(format!("line {number}: user {user:?} appears twice"));
            }
        }
        let decoy = users.values().next().cloned();
        Ok(Htpasswd {
            inner: Arc::new(Inner {
                users,
                decoy,
                salt: *uuid::Uuid::new_v4().as_bytes(),
                verified: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Whether `password` is `user`'s. bcrypt runs on the blocking pool so it does not stall
    /// other requests.
    pub async fn verify(&self, user: &str, password: &str) -> bool {
        let key = self.cache_key(user, password);
        if self.recently_verified(&key) {
            return true;
        }
        let (hash, known) = match self.inner.users.get(user) {
            Some(hash) => (hash.clone(), true),
            None => match &self.inner.decoy {
                Some(decoy) => (decoy.clone(), false),
                None => return false,
            },
        };
        let password = password.to_owned();
        let matched = tokio::task::spawn_blocking(move || {
            bcrypt::verify(password.as_bytes(), &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if matched && known {
            self.remember(key);
            true
        } else {
            false
        }
    }

    fn cache_key(&self, user: &str, password: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.inner.salt);
        // The length prefix keeps ("ab", "c") and ("a", "bc") apart.
        hasher.update((user.len() as u64).to_be_bytes());
        hasher.update(user.as_bytes());
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    fn recently_verified(&self, key: &[u8; 32]) -> bool {
        let verified = match self.inner.verified.lock() {
            Ok(verified) => verified,
            Err(poisoned) => poisoned.into_inner(),
        };
        verified.get(key).is_some_and(|at| at.elapsed() < CACHE_TTL)
    }

    fn remember(&self, key: [u8; 32]) {
        let mut verified = match self.inner.verified.lock() {
            Ok(verified) => verified,
            Err(poisoned) => poisoned.into_inner(),
        };
        if verified.len() >= CACHE_MAX {
            verified.retain(|_, at| at.elapsed() < CACHE_TTL);
            if verified.len() >= CACHE_MAX {
                verified.clear();
            }
        }
        verified.insert(key, Instant::now());
    }
}

/// One htpasswd line for `user` (bcrypt at `cost`; 4 is the fastest, for tests).
pub fn htpasswd_entry(user: &str, password: &str, cost: u32) -> Result<String, String> {
    let hash = bcrypt::hash(password, cost).map_err(|err| err.to_string())?;
    Ok(format!("{user}:{hash}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn right_password_verifies_and_wrong_or_unknown_do_not() {
        let file = format!(
            "# users\n{}\n\n{}\n",
            htpasswd_entry("alice", "s3cret", 4).unwrap(),
            htpasswd_entry("bob", "hunter2", 4).unwrap()
        );
        let users = Htpasswd::parse(&file).unwrap();
        assert!(users.verify("alice", "s3cret").await);
        // Twice: the second answer comes from the cache and must agree.
        assert!(users.verify("alice", "s3cret").await);
        assert!(!users.verify("alice", "hunter2").await);
        assert!(!users.verify("carol", "s3cret").await);
        assert!(users.verify("bob", "hunter2").await);
    }

    #[test]
    fn non_bcrypt_entries_and_duplicates_are_refused_with_their_line() {
        let err = Htpasswd::parse("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
            .err()
            .unwrap();
        assert!(
            err.contains("line 1") && err.contains("htpasswd -B"),
            "{err}"
        );
        let entry = htpasswd_entry("alice", "x", 4).unwrap();
        let err = Htpasswd::parse(&format!("{entry}\n{entry}\n"))
            .err()
            .unwrap();
        assert!(err.contains("line 2") && err.contains("twice"), "{err}");
        assert!(Htpasswd::parse("no-colon\n").is_err());
    }

    #[test]
    fn cache_keys_separate_user_and_password() {
        let users = Htpasswd::parse("").unwrap();
        assert_ne!(users.cache_key("ab", "c"), users.cache_key("a", "bc"));
    }
}
