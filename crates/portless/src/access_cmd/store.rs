//! CLI token files: `$XDG_CONFIG_HOME/portless/tokens/HOST` (or `~/.config/portless/...`),
//! one token per application host, readable by the user only.
//!
//! A token is a credential: the directory is created mode 0700 and each file mode 0600,
//! written to a temporary file in the same directory and renamed over the old one, so a
//! reader never sees half a token and a crash never leaves one readable by others.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::target::Target;

/// Where tokens are kept.
#[derive(Debug, Clone)]
pub(crate) struct TokenStore {
    dir: PathBuf,
}

impl TokenStore {
    /// `$XDG_CONFIG_HOME/portless/tokens`, else `~/.config/portless/tokens`.
    pub(crate) fn default_location() -> anyhow::Result<TokenStore> {
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| crate::paths::home().map(|h| h.join(".config")))
            .context(
                "neither XDG_CONFIG_HOME nor HOME is set: set HOME so tokens have a place to live",
            )?;
        Ok(TokenStore {
            dir: config.join("portless").join("tokens"),
        })
    }

    /// The file of `target`'s token.
    pub(crate) fn path(&self, target: &Target) -> PathBuf {
        self.dir.join(&target.host)
    }

    /// Stores `token` for `target`, replacing any older one. Returns the file.
    pub(crate) fn save(&self, target: &Target, token: &str) -> anyhow::Result<PathBuf> {
        create_private_dir(&self.dir)?;
        let path = self.path(target);
        let temp = self
            .dir
            .join(format!(".{}.{}.tmp", target.host, std::process::id()));
        let written = (|| -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(token.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            std::fs::rename(&temp, &path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(e)
                .with_context(|| format!("cannot write the token file {}", path.display()));
        }
        Ok(path)
    }

    /// The stored token of `target`, if it has not expired; otherwise an error telling to
    /// log in.
    pub(crate) fn load_valid(&self, target: &Target) -> anyhow::Result<String> {
        let path = self.path(target);
        let login = format!("run `portless access login {}`", target.origin());
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!(
                    "no token for {} ({} does not exist): {login}",
                    target.host,
                    path.display()
                )
            }
            Err(e) => bail!("cannot read the token file {}: {e}", path.display()),
        };
        let token = text.trim().to_owned();
        match expiry(&token) {
            Some(exp) if exp > unix_now() => Ok(token),
            Some(_) => bail!("the token for {} has expired: {login}", target.host),
            None => bail!(
                "{} does not hold a token (it was edited or damaged): {login}",
                path.display()
            ),
        }
    }
}

/// Creates `dir` (and parents) with mode 0700, and tightens it to 0700 if it exists.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the token directory {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private (mode 0700)", dir.display()))
}

/// The `exp` of a JWT, read without verifying it (the edge verifies; this only saves a
/// round trip with a token known to be dead).
pub(crate) fn expiry(token: &str) -> Option<u64> {
    claim(token, "exp")?.as_u64()
}

/// One claim of a JWT's payload, unverified.
pub(crate) fn claim(token: &str, name: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let mut value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get_mut(name).map(serde_json::Value::take)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(exp: u64) -> String {
        let payload = URL_SAFE_NO_PAD.encode(format!("{{\"exp\":{exp},\"aud\":[\"app.test\"]}}"));
        format!("eyJhbGciOiJFUzI1NiJ9.{payload}.sig")
    }

    #[test]
    fn tokens_are_private_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore {
            dir: dir.path().join("portless/tokens"),
        };
        let target = Target::parse("https://app.test").unwrap();
        let token = jwt(unix_now() + 3600);
        let path = store.save(&target, &token).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&store.dir), 0o700);
        assert_eq!(store.load_valid(&target).unwrap(), token);
        let newer = jwt(unix_now() + 7200);
        store.save(&target, &newer).unwrap();
        assert_eq!(store.load_valid(&target).unwrap(), newer);
        assert_eq!(
            std::fs::read_dir(&store.dir).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn missing_expired_or_damaged_tokens_say_to_log_in() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore {
            dir: dir.path().to_owned(),
        };
        let target = Target::parse("app.test").unwrap();
        let missing = store.load_valid(&target).unwrap_err().to_string();
        assert!(
            missing.contains("portless access login https://app.test"),
            "{missing}"
        );
        store.save(&target, &jwt(1)).unwrap();
        let expired = store.load_valid(&target).unwrap_err().to_string();
        assert!(
            expired.contains("expired") && expired.contains("access login"),
            "{expired}"
        );
        store.save(&target, "garbage").unwrap();
        let damaged = store.load_valid(&target).unwrap_err().to_string();
        assert!(damaged.contains("does not hold a token"), "{damaged}");
    }
}
