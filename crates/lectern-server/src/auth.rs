//! Join tokens: JWTs checked against a pinned algorithm per key.
//!
//! Lectern mints HS256 tokens with its own secret; an LMS or portal may mint RS256 or EdDSA
//! tokens checked with public keys from the config. A token's header `alg` selects the key
//! family, and each key accepts only its own algorithm, so `alg: none` or an RS256/HS256
//! confusion is refused.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lectern_proto::{ErrorCode, ParticipantId, Role, RoomId};
use lectern_room::Identity;
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;

/// The claims of a join token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinClaims {
    /// The participant's stable id (e.g. the LMS user id).
    pub sub: String,
    /// Display name shown to the class.
    pub name: String,
    /// The room the token admits to.
    pub room: String,
    pub role: Role,
    /// Expiry and not-before, in seconds since the Unix epoch (read from a NumericDate that
    /// may have a fraction, rounded down).
    #[serde(deserialize_with = "numeric_date")]
    pub exp: u64,
    #[serde(deserialize_with = "numeric_date")]
    pub nbf: u64,
    #[serde(
        default,
        deserialize_with = "optional_numeric_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Why a token was refused. Maps to a protocol [`ErrorCode`].
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the join token has expired")]
    Expired,
    #[error("the join token is not valid yet")]
    NotYetValid,
    #[error("the join token is for another room")]
    WrongRoom,
    #[error("the join token is invalid: {0}")]
    Invalid(String),
}

impl TokenError {
    pub fn code(&self) -> ErrorCode {
        match self {
            TokenError::Expired => ErrorCode::TokenExpired,
            TokenError::NotYetValid => ErrorCode::TokenNotYetValid,
            TokenError::WrongRoom => ErrorCode::WrongRoom,
            TokenError::Invalid(_) => ErrorCode::InvalidToken,
        }
    }
}

/// A NumericDate in whole seconds: a fraction is dropped, a negative time is 0 and one past
/// `u64::MAX` is `u64::MAX` (the checks that matter run on the exact value, `TimeClaims`).
fn numeric_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let secs = f64::deserialize(d)?;
    // `as` saturates, and is exact for the integers a time can be.
    Ok(secs.floor() as u64)
}

fn optional_numeric_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.map(|secs| secs.floor() as u64))
}

/// The time claims of a token being checked: JWT's NumericDate, seconds since the Unix epoch
/// that may have a fraction (RFC 7519 §2), so they are read as numbers, not integers.
#[derive(Debug, Deserialize)]
struct TimeClaims {
    exp: f64,
    nbf: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read public key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("auth.public_keys[{index}]: not a valid {algorithm} public key in PEM form: {message}")]
    Pem {
        index: usize,
        algorithm: String,
        message: String,
    },
    #[error("could not sign the token: {0}")]
    Sign(String),
    #[error(
        "a join token may be valid for at most {max_secs} s (auth.max_token_lifetime_secs); asked for {asked_secs} s"
    )]
    TooLong { asked_secs: u64, max_secs: u64 },
}

struct PublicKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Checks join tokens and mints HS256 ones.
pub struct Authenticator {
    secret: Vec<u8>,
    public_keys: Vec<PublicKey>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
    max_lifetime: u64,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("public_keys", &self.public_keys.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// `secret` is the resolved HS256 secret (config or generated).
    pub fn new(config: &AuthConfig, secret: Vec<u8>) -> Result<Self, KeyError> {
        let mut public_keys = Vec::new();
        for (index, key) in config.public_keys.iter().enumerate() {
            let pem = match (&key.pem, &key.pem_file) {
                (Some(pem), _) => pem.clone().into_bytes(),
                (None, Some(path)) => std::fs::read(path).map_err(|source| KeyError::Read {
                    path: path.display().to_string(),
                    source,
                })?,
                (None, None) => Vec::new(),
            };
            let pem_err = |e: jsonwebtoken::errors::Error| KeyError::Pem {
                index,
                algorithm: key.algorithm.clone(),
                message: e.to_string(),
            };
            let (algorithm, decoding) = match key.algorithm.as_str() {
                "RS256" => (
                    Algorithm::RS256,
                    DecodingKey::from_rsa_pem(&pem).map_err(pem_err)?,
                ),
                _ => (
                    Algorithm::EdDSA,
                    DecodingKey::from_ed_pem(&pem).map_err(pem_err)?,
                ),
            };
            public_keys.push(PublicKey {
                kid: key.kid.clone(),
                algorithm,
                key: decoding,
            });
        }
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Ok(Authenticator {
            secret,
            public_keys,
            issuer: non_empty(&config.issuer),
            audience: non_empty(&config.audience),
            leeway: config.leeway_secs,
            max_lifetime: config.max_token_lifetime_secs,
        })
    }

    /// Check a token. `expected_room`, when given (the `room` query parameter of `/ws`), must
    /// match the token's room.
    pub fn verify(
        &self,
        token: &str,
        expected_room: Option<&str>,
    ) -> Result<(RoomId, Identity), TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| TokenError::Invalid(format!("bad header: {e}")))?;
        let candidates: Vec<&DecodingKey> = match header.alg {
            Algorithm::HS256 => vec![],
            Algorithm::RS256 | Algorithm::EdDSA => self
                .public_keys
                .iter()
                .filter(|k| k.algorithm == header.alg)
                .filter(|k| match (&header.kid, &k.kid) {
                    (Some(h), Some(k)) => h == k,
                    _ => true,
                })
                .map(|k| &k.key)
                .collect(),
            other => {
                return Err(TokenError::Invalid(format!(
                    "algorithm {other:?} is not accepted"
                )));
            }
        };
        let secret_key;
        let keys = if header.alg == Algorithm::HS256 {
            secret_key = DecodingKey::from_secret(&self.secret);
            vec![&secret_key]
        } else {
            candidates
        };
        if keys.is_empty() {
            return Err(TokenError::Invalid(format!(
                "no key is configured for {:?}",
                header.alg
            )));
        }
        let mut validation = Validation::new(header.alg);
        // `exp` and `nbf` are checked here, after the signature (`check_times`): jsonwebtoken
        // reads them as integers only, and knows no longest lifetime.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        // A configured issuer or audience must also be present: jsonwebtoken only checks the
        // claims a token carries.
        let mut required = vec!["sub"];
        match &self.issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let mut last = TokenError::Invalid("no key".into());
        for key in keys {
            match jsonwebtoken::decode::<serde_json::Value>(token, key, &validation) {
                Ok(data) => {
                    let bad =
                        |e: serde_json::Error| TokenError::Invalid(format!("bad claims: {e}"));
                    // The times first, read exactly (fractions and all), then the rest.
                    let times = TimeClaims::deserialize(&data.claims).map_err(bad)?;
                    self.check_times(&times, unix_now_f64())?;
                    let claims = JoinClaims::deserialize(&data.claims).map_err(bad)?;
                    return check_claims(claims, expected_room);
                }
                Err(e) => {
                    last = map_error(e);
                    // Only a bad signature means another key might fit.
                    if !matches!(last, TokenError::Invalid(ref m) if m == "bad signature") {
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }

    /// A token is usable from `nbf` to `exp` (each with the leeway), and for at most the longest
    /// lifetime from now.
    fn check_times(&self, t: &TimeClaims, now: f64) -> Result<(), TokenError> {
        let leeway = self.leeway as f64;
        if t.exp < now - leeway {
            return Err(TokenError::Expired);
        }
        if t.nbf > now + leeway {
            return Err(TokenError::NotYetValid);
        }
        if t.exp - now > (self.max_lifetime + self.leeway) as f64 {
            return Err(TokenError::Invalid(format!(
                "it is valid for too long: at most {} s from its use are accepted",
                self.max_lifetime
            )));
        }
        Ok(())
    }

    /// A grant: proof, for a URL that cannot carry an `Authorization` header (a `<video src>`),
    /// that this server allowed `scope` until `expires` (Unix seconds). An HMAC-SHA256 with the
    /// server's secret over a label, the scope and the expiry: `<expires>.<hex>`.
    pub fn grant(&self, scope: &str, expires: u64) -> String {
        use hmac::Mac;
        let mac = self.grant_mac(scope, expires);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{expires}.{hex}")
    }

    /// Whether `grant` was made by [`Authenticator::grant`] for `scope` and has not expired
    /// at `now` (Unix seconds). Compared in constant time.
    pub fn check_grant(&self, scope: &str, grant: &str, now: u64) -> bool {
        let Some((expires, hex)) = grant.split_once('.') else {
            return false;
        };
        let Ok(expires) = expires.parse::<u64>() else {
            return false;
        };
        if expires < now || hex.len() != 64 || !hex.is_ascii() {
            return false;
        }
        use hmac::Mac;
        let Ok(bytes) = (0..32)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
        else {
            return false;
        };
        self.grant_mac(scope, expires).verify_slice(&bytes).is_ok()
    }

    fn grant_mac(&self, scope: &str, expires: u64) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.secret)
            .expect("HMAC takes a key of any length");
        mac.update(b"lectern grant\0");
        mac.update(scope.as_bytes());
        mac.update(b"\0");
        mac.update(&expires.to_be_bytes());
        mac
    }

    /// The longest lifetime a token may have (`auth.max_token_lifetime_secs`).
    pub fn max_lifetime_secs(&self) -> u64 {
        self.max_lifetime
    }

    /// Mint an HS256 join token valid from now for `ttl_secs` (at most the longest lifetime).
    pub fn mint(
        &self,
        room: &str,
        sub: &str,
        name: &str,
        role: Role,
        ttl_secs: u64,
    ) -> Result<String, KeyError> {
        if ttl_secs > self.max_lifetime {
            return Err(KeyError::TooLong {
                asked_secs: ttl_secs,
                max_secs: self.max_lifetime,
            });
        }
        let now = unix_now();
        let claims = JoinClaims {
            sub: sub.to_owned(),
            name: name.to_owned(),
            room: room.to_owned(),
            role,
            exp: now + ttl_secs,
            nbf: now.saturating_sub(1),
            iat: Some(now),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.secret),
        )
        .map_err(|e| KeyError::Sign(e.to_string()))
    }
}

fn check_claims(
    claims: JoinClaims,
    expected_room: Option<&str>,
) -> Result<(RoomId, Identity), TokenError> {
    let valid_id = |s: &str, max: usize| {
        !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
    };
    if !valid_id(&claims.sub, 128) {
        return Err(TokenError::Invalid(
            "sub must be 1 to 128 characters".into(),
        ));
    }
    if !valid_id(&claims.room, 128) {
        return Err(TokenError::Invalid(
            "room must be 1 to 128 characters".into(),
        ));
    }
    if !valid_id(&claims.name, 100) {
        return Err(TokenError::Invalid(
            "name must be 1 to 100 characters".into(),
        ));
    }
    if let Some(room) = expected_room
        && room != claims.room
    {
        return Err(TokenError::WrongRoom);
    }
    Ok((
        RoomId::new(claims.room),
        Identity {
            id: ParticipantId::new(claims.sub),
            name: claims.name.trim().to_owned(),
            role: claims.role,
        },
    ))
}

fn map_error(e: jsonwebtoken::errors::Error) -> TokenError {
    match e.kind() {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidSignature => TokenError::Invalid("bad signature".into()),
        ErrorKind::MissingRequiredClaim(c) => TokenError::Invalid(format!("missing claim {c}")),
        ErrorKind::InvalidIssuer => TokenError::Invalid("wrong issuer".into()),
        ErrorKind::InvalidAudience => TokenError::Invalid("wrong audience".into()),
        ErrorKind::InvalidAlgorithm => TokenError::Invalid("algorithm not accepted".into()),
        ErrorKind::Json(e) => TokenError::Invalid(format!("bad claims: {e}")),
        _ => TokenError::Invalid("malformed token".into()),
    }
}

/// Now in whole seconds since the Unix epoch (what minted tokens carry).
pub fn unix_now() -> u64 {
    unix_now_f64() as u64
}

/// Now in seconds since the Unix epoch, with the fraction (what token times are checked against).
fn unix_now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Parse a duration like `90s`, `30m`, `2h` or `7d` into seconds.
pub fn parse_ttl(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(mult).filter(|v| *v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        Authenticator::new(&crate::config::Config::defaults().auth, vec![7u8; 32]).expect("auth")
    }

    #[test]
    fn round_trip() {
        let a = auth();
        let token = a.mint("r1", "u1", "Ada", Role::Student, 60).expect("mint");
        let (room, id) = a.verify(&token, Some("r1")).expect("valid");
        // Grants: for their scope only, until they expire, unforgeable.
        let grant = a.grant("rec_1/segments/1", 1_000);
        assert!(a.check_grant("rec_1/segments/1", &grant, 999));
        assert!(a.check_grant("rec_1/segments/1", &grant, 1_000));
        assert!(!a.check_grant("rec_1/segments/1", &grant, 1_001));
        assert!(!a.check_grant("rec_1/segments/2", &grant, 999));
        let forged = format!("2000{}", &grant[4..]);
        assert!(!a.check_grant("rec_1/segments/1", &forged, 999));
        for junk in [
            "",
            ".",
            "1000.",
            "x.y",
            "1000.zz",
            "1000.é",
            &grant[..grant.len() - 1],
        ] {
            assert!(!a.check_grant("rec_1/segments/1", junk, 999), "{junk:?}");
        }
        assert_eq!(room.as_str(), "r1");
        assert_eq!(id.role, Role::Student);
        assert!(matches!(
            a.verify(&token, Some("r2")),
            Err(TokenError::WrongRoom)
        ));
    }

    #[test]
    fn numeric_dates_and_the_longest_lifetime() {
        let a = auth();
        let max = a.max_lifetime_secs() as f64;
        let now = 1_800_000_000.5;
        let at = |exp: f64, nbf: f64| a.check_times(&TimeClaims { exp, nbf }, now);
        // Fractions are NumericDates too.
        assert!(at(now + 600.25, now - 1.5).is_ok());
        assert!(matches!(
            at(now - 60.5, now - 600.0),
            Err(TokenError::Expired)
        ));
        assert!(matches!(
            at(now + 600.0, now + 60.5),
            Err(TokenError::NotYetValid)
        ));
        // Never-expiring tokens are refused; the longest lifetime is accepted.
        assert!(at(now + max, now).is_ok());
        for exp in [now + max + 60.0, 2f64.powi(63), u64::MAX as f64] {
            assert!(
                matches!(at(exp, now), Err(TokenError::Invalid(ref m)) if m.contains("too long")),
                "{exp}"
            );
        }
        assert!(matches!(
            a.mint("r", "u", "Ada", Role::Student, a.max_lifetime_secs() + 1),
            Err(KeyError::TooLong { .. })
        ));
    }

    #[test]
    fn ttl_parsing() {
        assert_eq!(parse_ttl("2h"), Some(7200));
        assert_eq!(parse_ttl("90"), Some(90));
        assert_eq!(parse_ttl("1d"), Some(86_400));
        assert_eq!(parse_ttl("0s"), None);
        assert_eq!(parse_ttl("h"), None);
        assert_eq!(parse_ttl("5y"), None);
    }
}
