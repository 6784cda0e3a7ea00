//! Sealing secrets at rest: XChaCha20-Poly1305 (RustCrypto) under the operator's 256-bit
//! key, a fresh random 192-bit nonce per value stored beside the ciphertext, and the
//! secret's scope and name as associated data, so a sealed value copied to another row of
//! the database does not open there.

use std::path::Path;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// What sealed text starts with: the format's version.
const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 24;

/// The key secrets are sealed with.
#[derive(Clone)]
pub struct Vault {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

/// Why a key or a sealed value could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("{0}")]
    Key(String),
    #[error("the sealed value is damaged, or was sealed with another key")]
    Open,
}

impl Vault {
    /// The key in `path`: 64 hex digits (surrounding white space ignored).
    pub fn from_file(path: &Path) -> Result<Vault, VaultError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            VaultError::Key(format!(
                "cannot read the secret key file {}: {e}",
                path.display()
            ))
        })?;
        let bytes = decode_hex(text.trim())
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                VaultError::Key(format!(
                    "the secret key file {} must hold 64 hex digits (a 256-bit key); make one with \
                 `head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'`",
                    path.display()
                ))
            })?;
        Vault::from_key(&bytes)
    }

    /// The key in `path`, made (random, readable by its owner only) if the file is missing:
    /// what `conveyor up` does in its data directory.
    pub fn load_or_create(path: &Path) -> Result<Vault, VaultError> {
        if !path.exists() {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let key = XChaCha20Poly1305::generate_key(&mut OsRng);
            write_private(path, &hex(&key)).map_err(|e| {
                VaultError::Key(format!(
                    "cannot write the secret key file {}: {e}",
                    path.display()
                ))
            })?;
        }
        Vault::from_file(path)
    }

    fn from_key(bytes: &[u8]) -> Result<Vault, VaultError> {
        let cipher = XChaCha20Poly1305::new_from_slice(bytes)
            .map_err(|_| VaultError::Key("a secret key has 32 bytes".into()))?;
        Ok(Vault { cipher })
    }

    /// `value` sealed for the secret `name` of `scope` (a product, or empty).
    pub fn seal(&self, scope: &str, name: &str, value: &str) -> Result<String, VaultError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = associated(scope, name);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Open)?;
        Ok(format!("{PREFIX}{}{}", hex(&nonce), hex(&sealed)))
    }

    /// The value `sealed` holds, if it was sealed for this scope and name with this key.
    pub fn open(&self, scope: &str, name: &str, sealed: &str) -> Result<String, VaultError> {
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(decode_hex)
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or(VaultError::Open)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VaultError::Open)?;
        let aad = associated(scope, name);
        let plain = self
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Open)?;
        String::from_utf8(plain).map_err(|_| VaultError::Open)
    }
}

fn associated(scope: &str, name: &str) -> Vec<u8> {
    format!("conveyor secret\0{scope}\0{name}").into_bytes()
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        Vault::from_key(&[7u8; 32]).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_only_in_its_place_and_under_its_key() {
        let v = vault();
        let sealed = v.seal("shop", "NPM_TOKEN", "npm_s3cr3t").unwrap();
        assert!(!sealed.contains("npm_s3cr3t"));
        assert_eq!(v.open("shop", "NPM_TOKEN", &sealed).unwrap(), "npm_s3cr3t");
        assert_ne!(
            sealed,
            v.seal("shop", "NPM_TOKEN", "npm_s3cr3t").unwrap(),
            "fresh nonce"
        );
        assert_eq!(v.open("other", "NPM_TOKEN", &sealed), Err(VaultError::Open));
        assert_eq!(v.open("shop", "PYPI", &sealed), Err(VaultError::Open));
        let other = Vault::from_key(&[8u8; 32]).unwrap();
        assert_eq!(
            other.open("shop", "NPM_TOKEN", &sealed),
            Err(VaultError::Open)
        );
        assert_eq!(v.open("shop", "NPM_TOKEN", "v1:zz"), Err(VaultError::Open));
    }

    #[test]
    fn a_key_file_is_made_private_once_and_read_back() {
        let dir = std::env::temp_dir().join(format!("conveyor-vault-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret.key");
        let a = Vault::load_or_create(&path).unwrap();
        let sealed = a.seal("", "X", "value").unwrap();
        let b = Vault::load_or_create(&path).unwrap();
        assert_eq!(b.open("", "X", &sealed).unwrap(), "value");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, "not hex").unwrap();
        let err = Vault::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("must hold 64 hex digits"), "{err}");
    }
}
