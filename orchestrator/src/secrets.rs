//! Comparing and hashing secrets: constant-time equality, the SHA-256 a token is stored as,
//! and HMAC-SHA256 in hex (webhook signatures, dashboard sessions).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Equal strings, compared without an early exit.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The SHA-256 of a token, hex: what the database keeps.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// HMAC-SHA256 of `message` under `key`, hex.
pub fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    m.update(message);
    hex(&m.finalize().into_bytes())
}

/// Whether `signature` (hex) is the HMAC-SHA256 of `body` under `secret`, checked in
/// constant time.
pub fn hmac_hex_ok(secret: &str, body: &[u8], signature: &str) -> bool {
    let Some(expected) = decode_hex(signature) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
