//! Join tokens: HS256 JWTs signed with the server's shared secret.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lectern_proto::Role;
use rand::Rng as _;
use serde::Serialize;

#[derive(Debug, Serialize)]
struct Claims<'a> {
    sub: &'a str,
    name: &'a str,
    room: &'a str,
    role: Role,
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// Mints join tokens for one room.
pub struct TokenMinter {
    key: EncodingKey,
    room: String,
}

impl std::fmt::Debug for TokenMinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of debug output.
        f.debug_struct("TokenMinter")
            .field("room", &self.room)
            .finish_non_exhaustive()
    }
}

impl TokenMinter {
    pub fn new(secret: &str, room: impl Into<String>) -> Self {
        Self {
            key: EncodingKey::from_secret(secret.as_bytes()),
            room: room.into(),
        }
    }

    /// A token valid from a minute ago for two hours (runs are bounded well below that).
    pub fn mint(&self, sub: &str, name: &str, role: Role) -> anyhow::Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the clock is before 1970")?
            .as_secs();
        let claims = Claims {
            sub,
            name,
            room: &self.room,
            role,
            iat: now,
            nbf: now.saturating_sub(60),
            exp: now + 2 * 3600,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .context("signing a join token")
    }
}

/// A fresh room id: `prefix-` and eight random lowercase letters or digits.
pub fn random_room(prefix: &str) -> String {
    format!("{prefix}-{}", random_alphanumeric(8).to_lowercase())
}

/// A random alphanumeric string (secrets, room names).
pub fn random_alphanumeric(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_has_the_claims_the_server_expects() {
        let minter = TokenMinter::new(&"s".repeat(32), "room-1");
        let token = minter
            .mint("u7", "Student 7", Role::Student)
            .expect("mints");
        let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "nbf", "sub"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret("s".repeat(32).as_bytes()),
            &validation,
        )
        .expect("verifies");
        assert_eq!(data.claims["sub"], "u7");
        assert_eq!(data.claims["room"], "room-1");
        assert_eq!(data.claims["role"], "student");
        assert_eq!(data.claims["name"], "Student 7");
    }
}
