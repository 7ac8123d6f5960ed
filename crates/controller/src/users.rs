//! Passwords and secrets of people: argon2id hashes (the RustCrypto `argon2` crate's
//! defaults, Argon2id v19, m=19 MiB, t=2, p=1) and the random values of tokens, sessions
//! and CSRF tokens.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// A PHC string of the password's argon2id hash with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password: {e}"))
}

/// Whether `password` matches `hash`; with no hash (no such user) a dummy hash is
/// checked so that the answer takes as long.
pub fn verify_password(hash: Option<&str>, password: &str) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("nines-no-such-user").unwrap_or_default());
    let (h, real) = match hash {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(h) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
        && real
}

/// The user `name` when `password` is theirs. The one place a sign-in is decided (the
/// login form and its rate limit call only this): a directory service (LDAP) would be
/// asked here, its groups mapped to roles. Unknown users cost the same time as known
/// ones (no timing oracle for names).
pub async fn verify_login(
    store: &dyn nines_store::Store,
    name: &str,
    password: String,
) -> Option<nines_store::UserRecord> {
    let user = match nines_model::auth::check_user_name("username", name) {
        Ok(_) => store.user(name).await.ok().flatten(),
        Err(_) => None,
    };
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let ok = tokio::task::spawn_blocking(move || verify_password(hash.as_deref(), &password))
        .await
        .unwrap_or(false);
    user.filter(|_| ok)
}

/// 32 random bytes, hex: a token, a session id, a CSRF token.
pub fn new_secret() -> String {
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_unknown_users_never_do() {
        let h = hash_password("correct horse battery").unwrap_or_default();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(Some(&h), "correct horse battery"));
        assert!(!verify_password(Some(&h), "correct horse batterY"));
        assert!(!verify_password(None, "nines-no-such-user"));
        assert!(!verify_password(Some("not a hash"), "x"));
        assert_ne!(new_secret(), new_secret());
        assert_eq!(new_secret().len(), 64);
    }
}
