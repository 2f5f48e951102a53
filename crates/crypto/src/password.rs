//! Argon2id password hashes (PHC strings) for the local identity provider.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Hash a password into a PHC string (`$argon2id$v=19$...`).
pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
}

/// Whether `phc` is a parseable PHC hash string.
pub fn is_valid_hash(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok()
}

/// Verify a password against a PHC string. Malformed hashes never verify.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_and_verify() {
        let h = super::hash("hunter2");
        assert!(h.starts_with("$argon2id$"));
        assert!(super::is_valid_hash(&h));
        assert!(super::verify("hunter2", &h));
        assert!(!super::verify("hunter3", &h));
        assert!(!super::verify("hunter2", "not a hash"));
    }
}
