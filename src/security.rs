//! Password hashing (argon2id), access tokens (EdDSA-signed JWTs) and opaque secret tokens
//! (refresh and password-reset tokens, stored only as SHA-256 hashes).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long an access token is valid.
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
/// How long a refresh token (and the login it belongs to) is valid without use.
pub const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How long a password-reset link is valid.
pub const RESET_TOKEN_TTL: Duration = Duration::from_secs(60 * 60);

/// Security failures that are not the caller's fault.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// No randomness available.
    #[error("no randomness available: {0}")]
    Random(String),
    /// The signing key could not be read, created or used.
    #[error("signing key {path}: {reason}")]
    Key {
        /// The key file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Signing a token failed.
    #[error("cannot sign a token: {0}")]
    Sign(String),
}

/// Hashes a password with argon2id and the OWASP-recommended parameters (19 MiB, t=2, p=1).
pub fn hash_password(password: &str) -> Result<String, SecurityError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| SecurityError::Hash(err.to_string()))
}

/// What checking a password found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    /// It matches and the stored hash uses today's parameters.
    Valid,
    /// It matches, but the hash was made with other parameters: store a new hash.
    ValidNeedsRehash,
    /// It does not match (or the stored hash is unreadable).
    Invalid,
}

/// Checks `password` against a stored PHC hash string.
pub fn verify_password(password: &str, stored: &str) -> PasswordCheck {
    let Ok(hash) = PasswordHash::new(stored) else { return PasswordCheck::Invalid };
    if Argon2::default().verify_password(password.as_bytes(), &hash).is_err() {
        return PasswordCheck::Invalid;
    }
    let wanted = argon2::Params::default();
    let current_costs = argon2::Params::try_from(&hash).ok().map(|p| (p.m_cost(), p.t_cost(), p.p_cost()));
    let same_algorithm = hash.algorithm.as_str() == "argon2id";
    if same_algorithm && current_costs == Some((wanted.m_cost(), wanted.t_cost(), wanted.p_cost())) {
        PasswordCheck::Valid
    } else {
        PasswordCheck::ValidNeedsRehash
    }
}

/// A hash to verify against when the user does not exist, so that a login for an unknown
/// account takes as long as one with a wrong password.
pub fn dummy_password_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a real password, only for timing").unwrap_or_default())
}

/// `n` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], SecurityError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|err| SecurityError::Random(err.to_string()))?;
    Ok(bytes)
}

/// A new opaque secret token (256 bits, base64url) and the SHA-256 hash stored for it.
pub fn new_secret_token() -> Result<(String, Vec<u8>), SecurityError> {
    let token = URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
    let hash = hash_secret_token(&token);
    Ok((token, hash))
}

/// The stored form of an opaque token.
pub fn hash_secret_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id, as a string (JWT `sub`).
    pub sub: String,
    /// The login session the token belongs to; revoking it revokes the token.
    pub sid: i64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at, seconds since the epoch.
    pub exp: u64,
}

/// Seconds since the epoch, now (0 if the clock is before 1970).
pub fn now_epoch_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The Ed25519 key pair that signs and verifies access tokens.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenKeys {
    /// Reads the 32-byte Ed25519 secret at `path`, creating it (mode 0600) on first use.
    pub fn load_or_create(path: &Path) -> Result<Self, SecurityError> {
        let key_error = |reason: String| SecurityError::Key { path: path.display().to_string(), reason };
        let secret: [u8; 32] = if path.exists() {
            let bytes = std::fs::read(path).map_err(|err| key_error(err.to_string()))?;
            bytes.try_into().map_err(|_| key_error("must hold exactly 32 bytes".into()))?
        } else {
            let secret = random_bytes::<32>()?;
            write_private_file(path, &secret).map_err(|err| key_error(err.to_string()))?;
            tracing::info!(path = %path.display(), "created the access-token signing key");
            secret
        };
        Self::from_secret(&secret).map_err(|err| key_error(err.to_string()))
    }

    /// Keys from a 32-byte Ed25519 secret.
    pub fn from_secret(secret: &[u8; 32]) -> Result<Self, SecurityError> {
        let signing = SigningKey::from_bytes(secret);
        let der = signing.to_pkcs8_der().map_err(|err| SecurityError::Sign(err.to_string()))?;
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: DecodingKey::from_ed_der(signing.verifying_key().as_bytes()),
        })
    }

    /// A signed access token for `user_id` in login `session_id`, valid for [`ACCESS_TOKEN_TTL`].
    pub fn issue(&self, user_id: i64, session_id: i64) -> Result<String, SecurityError> {
        let now = now_epoch_seconds();
        let claims =
            AccessClaims { sub: user_id.to_string(), sid: session_id, iat: now, exp: now + ACCESS_TOKEN_TTL.as_secs() };
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.encoding)
            .map_err(|err| SecurityError::Sign(err.to_string()))
    }

    /// The claims of a valid, unexpired token signed by this key; `None` otherwise.
    pub fn verify(&self, token: &str) -> Option<AccessClaims> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &validation).ok().map(|data| data.claims)
    }
}

/// How long an unsubscribe link in an email keeps working.
pub const UNSUBSCRIBE_TTL: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);
const UNSUBSCRIBE_AUDIENCE: &str = "agora-unsubscribe";

/// The claims of a signed unsubscribe link.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UnsubscribeClaims {
    sub: String,
    topic: String,
    aud: String,
    exp: u64,
}

impl TokenKeys {
    /// A signed token that turns off `topic` emails for `user_id` without signing in.
    pub fn issue_unsubscribe(&self, user_id: i64, topic: &str) -> Result<String, SecurityError> {
        let now = now_epoch_seconds();
        let claims = UnsubscribeClaims {
            sub: user_id.to_string(),
            topic: topic.to_owned(),
            aud: UNSUBSCRIBE_AUDIENCE.to_owned(),
            exp: now + UNSUBSCRIBE_TTL.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.encoding)
            .map_err(|err| SecurityError::Sign(err.to_string()))
    }

    /// The user and topic of a valid unsubscribe token; access tokens are not accepted.
    pub fn verify_unsubscribe(&self, token: &str) -> Option<(i64, String)> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[UNSUBSCRIBE_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        let claims = jsonwebtoken::decode::<UnsubscribeClaims>(token, &self.decoding, &validation).ok()?.claims;
        Some((claims.sub.parse().ok()?, claims.topic))
    }
}

fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_wrong_ones_do_not() {
        let hash = hash_password("correct horse battery staple").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert_eq!(verify_password("correct horse battery staple", &hash), PasswordCheck::Valid);
        assert_eq!(verify_password("Correct horse battery staple", &hash), PasswordCheck::Invalid);
        assert_eq!(verify_password("anything", "not a hash"), PasswordCheck::Invalid);
    }

    #[test]
    fn hashes_with_old_parameters_ask_for_a_rehash() {
        let weak = Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(8 * 1024, 1, 1, None).unwrap(),
        );
        let hash = weak.hash_password(b"hunter2hunter2").unwrap().to_string();
        assert_eq!(verify_password("hunter2hunter2", &hash), PasswordCheck::ValidNeedsRehash);
    }

    #[test]
    fn access_tokens_round_trip_and_reject_tampering_and_other_keys() {
        let keys = TokenKeys::from_secret(&[7u8; 32]).unwrap();
        let token = keys.issue(42, 9).unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.sid), ("42", 9));
        let other = TokenKeys::from_secret(&[8u8; 32]).unwrap();
        assert!(other.verify(&token).is_none(), "a token from another key is refused");
        let mut tampered = token.clone();
        tampered.insert(tampered.len() / 2, 'x');
        assert!(keys.verify(&tampered).is_none());
        assert!(keys.verify("not.a.token").is_none());
        assert!(keys.verify("").is_none());
    }

    #[test]
    fn secret_tokens_are_random_and_stored_hashed() {
        let (a, hash_a) = new_secret_token().unwrap();
        let (b, _) = new_secret_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_secret_token(&a), hash_a);
    }
}
