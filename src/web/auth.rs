//! HTTP basic authentication against `basic_auth_users` (bcrypt hashes).
//!
//! A bcrypt check costs tens of milliseconds by design, so a check that
//! succeeded is remembered (as a SHA-256 of user, hash and password, never
//! the password itself) and the next scrape with the same credentials costs a
//! hash lookup. Checks run on the blocking pool, one at a time, so a flood of
//! wrong passwords takes one core at most and never a runtime worker. An
//! unknown user costs a bcrypt check too, so timing does not tell which users
//! exist.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;

/// Successful checks remembered; past it the memory starts afresh.
const REMEMBERED: usize = 1024;

/// The users of one web configuration.
#[derive(Debug)]
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    /// Digests of credentials that passed.
    passed: Mutex<HashSet<[u8; 32]>>,
    /// Held during a bcrypt check.
    checking: Arc<Mutex<()>>,
}

impl BasicAuth {
    /// The users, by name, with their bcrypt hashes (checked well formed at load).
    pub fn new(users: BTreeMap<String, String>) -> Self {
        BasicAuth {
            users,
            passed: Mutex::new(HashSet::new()),
            checking: Arc::new(Mutex::new(())),
        }
    }

    /// Whether an `Authorization` header value carries a known user and the
    /// right password.
    pub async fn allows(&self, authorization: Option<&[u8]>) -> bool {
        let Some((user, password)) = authorization.and_then(credentials) else {
            return false;
        };
        let known = self.users.get(&user);
        let hash = known
            .cloned()
            .unwrap_or_else(|| unknown_user_hash().to_owned());
        let digest = digest(&user, &hash, &password);
        if known.is_some() && self.lock_passed().contains(&digest) {
            return true;
        }
        let checking = self.checking.clone();
        let verified = tokio::task::spawn_blocking(move || {
            let _one_at_a_time = checking.lock().unwrap_or_else(|p| p.into_inner());
            bcrypt::verify(password.as_bytes(), &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let allowed = verified && known.is_some();
        if allowed {
            let mut passed = self.lock_passed();
            if passed.len() >= REMEMBERED {
                passed.clear();
            }
            passed.insert(digest);
        }
        allowed
    }

    fn lock_passed(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.passed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// User and password of a `Basic` header value.
fn credentials(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn digest(user: &str, hash: &str, password: &str) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, hash, password] {
        context.update(&(part.len() as u64).to_le_bytes());
        context.update(part.as_bytes());
    }
    let mut out = [0; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// A hash no password is tested against for real: the cost of checking an
/// unknown user, made once at the cost the default tools use.
fn unknown_user_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        bcrypt::hash("no user has this password", 10).expect("bcrypt cost 10 is in range")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> Vec<u8> {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}").into_bytes()
    }

    #[tokio::test]
    async fn only_the_right_password_of_a_known_user_passes_and_is_remembered() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let auth = BasicAuth::new(BTreeMap::from([("alice".to_owned(), hash)]));
        assert!(auth.allows(Some(&header("alice", "s3cret"))).await);
        assert_eq!(auth.lock_passed().len(), 1);
        assert!(auth.allows(Some(&header("alice", "s3cret"))).await);
        assert!(!auth.allows(Some(&header("alice", "wrong"))).await);
        assert!(!auth.allows(Some(&header("bob", "s3cret"))).await);
        assert!(!auth.allows(None).await);
        assert!(!auth.allows(Some(b"Bearer abc")).await);
        assert!(!auth.allows(Some(b"Basic !!!")).await);
        assert_eq!(auth.lock_passed().len(), 1, "failures are not remembered");
    }

    #[test]
    fn credentials_split_at_the_first_colon() {
        let value = header("alice", "pa:ss");
        assert_eq!(credentials(&value), Some(("alice".into(), "pa:ss".into())));
        assert_eq!(credentials(b"basic YTpi"), Some(("a".into(), "b".into())));
    }
}
