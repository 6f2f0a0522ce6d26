//! Authenticated encryption of secrets at rest: TOTP seeds (and later other second-factor
//! secrets) are stored sealed, so a copy of the store alone does not give them away.
//!
//! A [`SecretBox`] holds one 32-byte key, read from a key file that lives beside the store (or
//! is created there on first start, owner-only). Sealing uses AES-256-GCM from aws-lc-rs with a
//! fresh random 96-bit nonce per message; the caller's associated data (for TOTP: the
//! username) is authenticated too, so a sealed value copied onto another user's row does not
//! open. Sealed format, version 1:
//!
//! ```text
//! [0x01] [nonce: 12 bytes] [ciphertext] [tag: 16 bytes]
//! ```
//!
//! The version byte is covered by the tag (it is part of the AEAD's associated data), so a later
//! format can be introduced without ambiguity.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use secrecy::zeroize::Zeroize as _;

/// Length of a key in bytes.
pub const KEY_LEN: usize = 32;
/// The format version written as the first byte of every sealed value.
const VERSION: u8 = 1;
/// AES-GCM tag length.
const TAG_LEN: usize = 16;
/// The shortest possible sealed value (empty plaintext).
const MIN_SEALED_LEN: usize = 1 + NONCE_LEN + TAG_LEN;

/// A symmetric key that seals and opens secrets stored at rest.
///
/// Its `Debug` output never shows the key.
pub struct SecretBox {
    key: RandomizedNonceKey,
}

/// Why a key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretBoxError {
    /// The key file exists but could not be read.
    #[error(
        "cannot read the secrets key file {}: {source}: check the path and that the user running Portless owns the file",
        path.display()
    )]
    Read {
        /// The key file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The key file (or its directory) could not be created.
    #[error(
        "cannot create the secrets key file {}: {source}: check that the user running Portless can write its directory",
        path.display()
    )]
    Create {
        /// The key file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The key file is readable or writable by users other than its owner.
    #[error(
        "the secrets key file {} is accessible to other users (mode {mode:o}): run `chmod 600 {}` and start again",
        path.display(),
        path.display()
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file does not hold exactly [`KEY_LEN`] bytes.
    #[error(
        "the secrets key file {} holds {len} bytes, but a key is exactly 32 bytes: restore the right file from a backup (if nothing was sealed with it yet, delete it and Portless creates a new one)",
        path.display()
    )]
    WrongLength {
        /// The key file.
        path: PathBuf,
        /// How many bytes it holds.
        len: usize,
    },
    /// Key bytes given in memory do not have [`KEY_LEN`] bytes.
    #[error("a secrets key is exactly 32 bytes, got {len}: pass the whole key")]
    InvalidKeyLength {
        /// How many bytes were given.
        len: usize,
    },
    /// The operating system's random generator failed.
    #[error(
        "the random generator failed while creating a secrets key: check the host's entropy source"
    )]
    Random,
}

/// Why a secret could not be sealed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The cipher refused: the plaintext is far too large or the random generator failed.
    #[error(
        "sealing a secret failed (plaintext too large, or the random generator failed): check the host's entropy source"
    )]
    Failed,
}

/// Why a sealed value could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenError {
    /// Too short to be a sealed value at all.
    #[error(
        "the sealed secret is truncated: the store was edited by hand or is damaged; restore it from a backup or enrol again"
    )]
    Truncated,
    /// The first byte names a format this code does not know.
    #[error(
        "the sealed secret has unknown format version {version}: a newer Portless wrote it; run that version"
    )]
    UnknownVersion {
        /// The version byte found.
        version: u8,
    },
    /// Authentication failed: another key, other associated data, or altered bytes.
    #[error(
        "the sealed secret does not open with this key: it was sealed with another key file, for another record, or altered; restore the edge's key file, or enrol again"
    )]
    Invalid,
}

// === impl SecretBox ===

impl SecretBox {
    /// Loads the key from `path`, or creates a new random key there (mode 0600, directory
    /// 0700) if the file does not exist.
    ///
    /// An existing file must be accessible by its owner only and hold exactly [`KEY_LEN`] raw
    /// bytes. Several processes starting at once agree on one key: the new key is written to a
    /// temporary file and linked into place only if no key appeared meanwhile.
    pub fn load_or_create(path: &Path) -> Result<SecretBox, SecretBoxError> {
        match File::open(path) {
            Ok(file) => Self::load(path, file),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Self::create(path),
            Err(source) => Err(SecretBoxError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// A box with the given key bytes (exactly [`KEY_LEN`]), e.g. from a secret manager.
    pub fn from_key_bytes(key: &[u8]) -> Result<SecretBox, SecretBoxError> {
        if key.len() != KEY_LEN {
            return Err(SecretBoxError::InvalidKeyLength { len: key.len() });
        }
        let key = RandomizedNonceKey::new(&AES_256_GCM, key)
            .map_err(|_| SecretBoxError::InvalidKeyLength { len: key.len() })?;
        Ok(SecretBox { key })
    }

    /// Seals `plaintext`, binding it to `aad` (which must be given again to open it).
    ///
    /// Each call uses a fresh random nonce, so sealing the same plaintext twice gives
    /// different outputs.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut in_out = plaintext.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(versioned_aad(VERSION, aad)), &mut in_out)
            .map_err(|_| SealError::Failed)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&in_out);
        in_out.zeroize();
        Ok(sealed)
    }

    /// Opens a value made by [`SecretBox::seal`] with the same key and `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < MIN_SEALED_LEN {
            return Err(OpenError::Truncated);
        }
        let (&version, rest) = sealed.split_first().ok_or(OpenError::Truncated)?;
        if version != VERSION {
            return Err(OpenError::UnknownVersion { version });
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::Truncated)?;
        let mut in_out = ciphertext.to_vec();
        let plaintext_len = self
            .key
            .open_in_place(nonce, Aad::from(versioned_aad(version, aad)), &mut in_out)
            .map_err(|_| OpenError::Invalid)?
            .len();
        in_out.truncate(plaintext_len);
        Ok(in_out)
    }

    /// Reads and checks an existing key file.
    fn load(path: &Path, mut file: File) -> Result<SecretBox, SecretBoxError> {
        let read = |source| SecretBoxError::Read {
            path: path.to_owned(),
            source,
        };
        check_owner_only(path, &file)?;
        let mut bytes = Vec::with_capacity(KEY_LEN);
        // Read one byte more than a key, so an over-long file is reported rather than cut.
        (&mut file)
            .take(KEY_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        let result = if bytes.len() == KEY_LEN {
            Self::from_key_bytes(&bytes)
        } else {
            let len = usize::try_from(file.metadata().map_err(read)?.len()).unwrap_or(usize::MAX);
            Err(SecretBoxError::WrongLength {
                path: path.to_owned(),
                len,
            })
        };
        bytes.zeroize();
        result
    }

    /// Creates a new key file, or loads the one another process created first.
    fn create(path: &Path) -> Result<SecretBox, SecretBoxError> {
        let create = |source| SecretBoxError::Create {
            path: path.to_owned(),
            source,
        };
        let mut key = [0u8; KEY_LEN];
        aws_lc_rs::rand::fill(&mut key).map_err(|_| SecretBoxError::Random)?;
        let written = write_new_key_file(path, &key).map_err(create);
        key.zeroize();
        match written? {
            // Another process linked its key first: use that one.
            Linked::AlreadyExisted => {}
            Linked::Created => tracing::info!(path = %path.display(), "created a new secrets key"),
        }
        let file = File::open(path).map_err(|source| SecretBoxError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::load(path, file)
    }
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBox")
            .field("algorithm", &"AES-256-GCM")
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The AEAD's associated data: the format version, then the caller's data.
fn versioned_aad(version: u8, aad: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(1 + aad.len());
    full.push(version);
    full.extend_from_slice(aad);
    full
}

/// Refuses a key file that users other than its owner can read or write.
fn check_owner_only(path: &Path, file: &File) -> Result<(), SecretBoxError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = file.metadata().map_err(|source| SecretBoxError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretBoxError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, file);
    Ok(())
}

/// Whether [`write_new_key_file`] put its key in place.
enum Linked {
    /// The new key is now at the path.
    Created,
    /// A key file appeared at the path meanwhile; it was left alone.
    AlreadyExisted,
}

/// Writes `key` to a temporary owner-only file beside `path`, then hard-links it to `path`
/// (which fails if `path` exists), so no reader ever sees a half-written key.
fn write_new_key_file(path: &Path, key: &[u8; KEY_LEN]) -> io::Result<Linked> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;

    let tmp = temporary_path(path)?;
    let result = write_and_link(&tmp, path, key);
    // Best effort: the temporary name is random and owner-only, a leftover is harmless.
    let _ = fs::remove_file(&tmp);
    let linked = result?;
    #[cfg(unix)]
    if let Ok(dir) = File::open(dir) {
        // Make the new directory entry durable; failure only risks losing a fresh key.
        let _ = dir.sync_all();
    }
    Ok(linked)
}

fn write_and_link(tmp: &Path, path: &Path, key: &[u8; KEY_LEN]) -> io::Result<Linked> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(tmp)?;
    file.write_all(key)?;
    file.sync_all()?;
    drop(file);
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(Linked::Created),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(Linked::AlreadyExisted),
        Err(error) => Err(error),
    }
}

/// `.<name>.tmp-<random>` in the same directory as `path`.
fn temporary_path(path: &Path) -> io::Result<PathBuf> {
    let mut suffix = [0u8; 8];
    aws_lc_rs::rand::fill(&mut suffix).map_err(|_| io::Error::other("random generator failed"))?;
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "key".to_owned());
    Ok(path.with_file_name(format!(".{name}.tmp-{suffix}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(byte: u8) -> SecretBox {
        SecretBox::from_key_bytes(&[byte; KEY_LEN]).unwrap()
    }

    #[test]
    fn seal_then_open_round_trips() {
        let sb = boxed(7);
        let sealed = sb.seal(b"totp seed", b"alice").unwrap();
        assert_eq!(sealed[0], VERSION);
        assert_eq!(sealed.len(), MIN_SEALED_LEN + b"totp seed".len());
        assert_eq!(sb.open(&sealed, b"alice").unwrap(), b"totp seed");
    }

    #[test]
    fn the_same_plaintext_seals_differently_each_time() {
        let sb = boxed(7);
        assert_ne!(sb.seal(b"x", b"a").unwrap(), sb.seal(b"x", b"a").unwrap());
    }

    #[test]
    fn wrong_key_wrong_aad_and_tampering_are_refused() {
        let sb = boxed(7);
        let sealed = sb.seal(b"totp seed", b"alice").unwrap();
        assert_eq!(boxed(8).open(&sealed, b"alice"), Err(OpenError::Invalid));
        assert_eq!(sb.open(&sealed, b"bob"), Err(OpenError::Invalid));
        for i in 1..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            assert_eq!(
                sb.open(&tampered, b"alice"),
                Err(OpenError::Invalid),
                "byte {i}"
            );
        }
        let mut other_version = sealed.clone();
        other_version[0] = 2;
        assert_eq!(
            sb.open(&other_version, b"alice"),
            Err(OpenError::UnknownVersion { version: 2 })
        );
        assert_eq!(
            sb.open(&sealed[..MIN_SEALED_LEN - 1], b"alice"),
            Err(OpenError::Truncated)
        );
        let mut longer = sealed.clone();
        longer.push(0);
        assert_eq!(sb.open(&longer, b"alice"), Err(OpenError::Invalid));
    }

    #[test]
    fn key_bytes_of_the_wrong_length_are_refused() {
        assert!(matches!(
            SecretBox::from_key_bytes(&[0; 16]),
            Err(SecretBoxError::InvalidKeyLength { len: 16 })
        ));
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let text = format!("{:?}", boxed(0xab));
        assert!(text.contains("redacted"), "{text}");
        assert!(!text.contains("171"), "{text}");
        assert!(!text.to_lowercase().contains("abab"), "{text}");
    }

    #[test]
    fn a_created_key_file_is_owner_only_and_loads_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/secrets.key");
        let first = SecretBox::load_or_create(&path).unwrap();
        let sealed = first.seal(b"seed", b"alice").unwrap();
        assert_eq!(fs::read(&path).unwrap().len(), KEY_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let again = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(again.open(&sealed, b"alice").unwrap(), b"seed");
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_group_readable_key_file_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        fs::write(&path, [1u8; KEY_LEN]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let error = SecretBox::load_or_create(&path).unwrap_err();
        assert!(matches!(
            error,
            SecretBoxError::Permissions { mode: 0o640, .. }
        ));
        let message = error.to_string();
        assert!(
            message.contains(&format!("chmod 600 {}", path.display())),
            "{message}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_of_the_wrong_length_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        fs::write(&path, [1u8; KEY_LEN + 5]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let error = SecretBox::load_or_create(&path).unwrap_err();
        assert!(
            matches!(error, SecretBoxError::WrongLength { len, .. } if len == KEY_LEN + 5),
            "{error}"
        );
        fs::write(&path, [1u8; 3]).unwrap();
        assert!(matches!(
            SecretBox::load_or_create(&path),
            Err(SecretBoxError::WrongLength { len: 3, .. })
        ));
    }
}
