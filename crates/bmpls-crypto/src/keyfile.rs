//! Secret key files: 64 hex digits (an Ed25519 seed) and a newline, readable by the owner only.
//! A key file that others can read is refused, not used: on a validator it would let any local
//! user sign votes.

use std::io::Write;
use std::path::Path;

use zeroize::Zeroizing;

use crate::SigningKey;

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Unreadable or unwritable.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Group or others may read or write it.
    #[error("{path}: permissions {mode:o} let others read a secret key; run `chmod 600 {path}`")]
    Permissions {
        /// The file.
        path: String,
        /// Its mode.
        mode: u32,
    },
    /// Not 64 hex digits.
    #[error("{path}: not a key file (expected 64 hex digits)")]
    Format {
        /// The file.
        path: String,
    },
}

/// Reads a signing key from `path`.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyFileError> {
    Ok(SigningKey::from_seed(&*read_secret(path)?))
}

/// Writes `key` to a new file at `path`, readable by the owner only. Refuses to overwrite.
pub fn write_signing_key(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    write_secret(path, &key.to_seed())
}

/// Reads a 32-byte secret (64 hex digits) from an owner-only file.
pub fn read_secret(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeyFileError> {
    let shown = path.display().to_string();
    check_private(path)?;
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
                path: shown.clone(),
                source,
            })?,
        );
    let mut secret = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), secret.as_mut())
        .map_err(|_| KeyFileError::Format { path: shown })?;
    Ok(secret)
}

/// Writes a 32-byte secret as 64 hex digits to a new owner-only file. Refuses to overwrite.
pub fn write_secret(path: &Path, secret: &[u8; 32]) -> Result<(), KeyFileError> {
    let text = Zeroizing::new(format!("{}\n", hex::encode(secret)));
    write_private(path, text.as_bytes())
}

/// Writes secret bytes to a new file at `path` with owner-only permissions. Refuses to
/// overwrite an existing file.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Refuses a file that group or others can access.
pub fn check_private(path: &Path) -> Result<(), KeyFileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|source| KeyFileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::Permissions {
                path: path.display().to_string(),
                mode,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_key_reads_back_and_others_cannot_read_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("validator.key");
        let key = SigningKey::from_seed(&[9; 32]);
        write_signing_key(&path, &key).expect("write");
        assert_eq!(
            read_signing_key(&path).expect("read").public(),
            key.public()
        );
        assert!(matches!(
            write_signing_key(&path, &key),
            Err(KeyFileError::Io { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            assert!(matches!(
                read_signing_key(&path),
                Err(KeyFileError::Permissions { mode: 0o644, .. })
            ));
        }
    }

    #[test]
    fn a_file_that_is_not_a_key_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("k");
        write_private(&path, b"not hex at all\n").expect("write");
        assert!(matches!(
            read_signing_key(&path),
            Err(KeyFileError::Format { .. })
        ));
    }
}
