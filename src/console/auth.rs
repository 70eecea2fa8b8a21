//! Operators and their sessions: argon2 password hashes, server-side sessions (a random token in
//! an HttpOnly, SameSite=Strict cookie), a CSRF token per session that every state-changing
//! request must echo in `X-CSRF-Token`, and three roles.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::store::Store;

/// Session cookie name.
pub const COOKIE: &str = "hawkeye_console";
/// Sessions last a duty shift and a half.
pub const SESSION_HOURS: i64 = 12;

/// What a user may do: viewers look, operators act on events, admins also edit zones and users.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// A logged-in user.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub csrf: String,
}

/// 256 bits from the system's random source, as hex.
pub fn random_token() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    format!("{}{}", a.simple(), b.simple())
}

/// A password a person can type from a printout: 16 characters, no look-alikes.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bytes: Vec<u8> = uuid::Uuid::new_v4().as_bytes().iter().chain(uuid::Uuid::new_v4().as_bytes()).copied().collect();
    bytes.iter().take(16).map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes()).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt).map_err(|e| anyhow::anyhow!("argon2: {e}"))?.to_string())
}

pub fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Checks a password; on success opens a session: (token, csrf).
pub async fn login(store: &Store, name: &str, password: &str) -> anyhow::Result<Option<(String, String)>> {
    let Some((hash, _)) = store.user(name).await? else {
        // the same work for unknown users, so timing does not tell which names exist
        let _ = hash_password(password);
        return Ok(None);
    };
    if !password_matches(password, &hash) {
        return Ok(None);
    }
    let (token, csrf) = (random_token(), random_token());
    let expires = (chrono::Utc::now() + chrono::Duration::hours(SESSION_HOURS)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    store.put_session(&token, name, &csrf, &expires).await?;
    Ok(Some((token, csrf)))
}

/// The user of a session token.
pub async fn session_user(store: &Store, token: &str) -> anyhow::Result<Option<User>> {
    Ok(store.session(token).await?.and_then(|(name, role, csrf)| Role::parse(&role).map(|role| User { name, role, csrf })))
}

/// Creates the first admin when there are no users; returns its password to print once.
pub async fn bootstrap_admin(store: &Store, name: &str, password: Option<&str>) -> anyhow::Result<Option<String>> {
    if store.user_count().await? > 0 {
        return Ok(None);
    }
    let pw = password.map(str::to_string).unwrap_or_else(random_password);
    store.put_user(name, &hash_password(&pw)?, Role::Admin.as_str()).await?;
    store.audit("console", "create-user", name, "first admin").await?;
    Ok(Some(pw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(password_matches("correct horse", &h));
        assert!(!password_matches("correct horsE", &h));
        assert!(!password_matches("correct horse", "not a hash"));
        assert_ne!(hash_password("correct horse").unwrap(), h, "salted");
    }

    #[test]
    fn tokens_and_passwords_are_random() {
        assert_eq!(random_token().len(), 64);
        assert_ne!(random_token(), random_token());
        let p = random_password();
        assert_eq!(p.chars().count(), 16);
        assert_ne!(p, random_password());
    }

    #[test]
    fn roles_order_by_power() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        assert_eq!(Role::parse("operator"), Some(Role::Operator));
        assert_eq!(Role::parse("root"), None);
    }
}
