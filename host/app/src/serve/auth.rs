//! API bearer tokens. A token is compared by its SHA-256 digest in constant
//! time, so neither its length nor its prefix leaks through timing.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Role;

#[derive(Clone)]
pub struct Token {
    name: String,
    role: Role,
    digest: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Token {
    pub fn new(name: &str, role: Role, secret: &str) -> Token {
        Token {
            name: name.to_string(),
            role,
            digest: Sha256::digest(secret.as_bytes()).into(),
        }
    }
}

/// The role and holder of the token `bearer`, if it is one. Every token is
/// compared, so the time taken does not say which one matched.
pub fn find<'t>(tokens: &'t [Token], bearer: &str) -> Option<(Role, &'t str)> {
    let digest: [u8; 32] = Sha256::digest(bearer.as_bytes()).into();
    let mut found = None;
    for t in tokens {
        if bool::from(t.digest.ct_eq(&digest)) {
            found = Some((t.role, t.name.as_str()));
        }
    }
    found
}

/// Constant-time equality of two secrets of any length.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let a: [u8; 32] = Sha256::digest(a).into();
    let b: [u8; 32] = Sha256::digest(b).into();
    bool::from(a.ct_eq(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_matching_token_only() {
        let tokens = [
            Token::new("ops", Role::Admin, "s3cret"),
            Token::new("dash", Role::Viewer, "v1ew"),
        ];
        assert_eq!(find(&tokens, "v1ew"), Some((Role::Viewer, "dash")));
        assert_eq!(find(&tokens, "s3cre"), None);
        assert_eq!(find(&tokens, ""), None);
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abcd"));
    }
}
