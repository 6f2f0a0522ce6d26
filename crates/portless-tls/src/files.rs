//! Reading and atomically creating the files this crate owns (CA certificate and key).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::TlsError;

/// Reads a whole file, naming it in the error.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::ReadFile {
        path: path.to_owned(),
        source,
    })
}

/// What [`create_new`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Created {
    /// The file did not exist and now holds `contents`.
    Written,
    /// Someone else created the file first; it was left untouched.
    AlreadyExisted,
}

/// Creates `path` with `contents` and Unix `mode`, atomically and without clobbering.
///
/// The content goes to a temporary file in the same directory (created with `mode` from the
/// start, so a private key is never readable by others, not even for an instant), is synced,
/// then hard-linked to its final name. `link` fails if the name exists, so two processes
/// starting together cannot overwrite each other's file, and a reader never sees a partial file.
pub(crate) fn create_new(path: &Path, contents: &[u8], mode: u32) -> Result<Created, TlsError> {
    let write_err = |source| TlsError::WriteFile {
        path: path.to_owned(),
        source,
    };
    let tmp = temp_path(path);
    let result = write_synced(&tmp, contents, mode).and_then(|()| fs::hard_link(&tmp, path));
    // The temporary name has served its purpose whatever happened; a failure to remove it
    // only leaves a stray file, so it is not worth failing for.
    let _ = fs::remove_file(&tmp);
    match result {
        Ok(()) => {
            sync_parent(path);
            Ok(Created::Written)
        }
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(Created::AlreadyExisted),
        Err(err) => Err(write_err(err)),
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut random = [0u8; 8];
    // A collision only makes `create_new(true)` fail, which is reported; no need to fail here.
    let _ = aws_lc_rs::rand::fill(&mut random);
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{suffix}"));
    path.with_file_name(name)
}

fn write_synced(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    set_mode(&mut options, mode);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(unix)]
fn set_mode(options: &mut OpenOptions, mode: u32) {
    use std::os::unix::fs::OpenOptionsExt as _;
    options.mode(mode);
}

#[cfg(not(unix))]
fn set_mode(_options: &mut OpenOptions, _mode: u32) {}

/// Makes the new directory entry durable. Best effort: not every platform can open a directory.
fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent()
        && let Ok(dir) = File::open(parent)
    {
        let _ = dir.sync_all();
    }
}

/// Creates `dir` (and parents) if needed; new directories get mode 0700 on Unix because they
/// are about to hold a private key.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| TlsError::WriteFile {
        path: dir.to_owned(),
        source,
    })
}

/// Logs a warning if a private key file is readable by group or others.
pub(crate) fn warn_if_not_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format_args!("{mode:o}"),
                    "private key file is readable by other users; run `chmod 600` on it"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_new_does_not_clobber() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file.pem");
        assert_eq!(
            create_new(&path, b"first", 0o600).unwrap(),
            Created::Written
        );
        assert_eq!(
            create_new(&path, b"second", 0o600).unwrap(),
            Created::AlreadyExisted
        );
        assert_eq!(fs::read(&path).unwrap(), b"first");
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn read_error_names_the_file() {
        let err = read(Path::new("/nonexistent/portless/ca.pem")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/portless/ca.pem"),
            "{err}"
        );
    }
}
