//! Default locations.

use std::path::PathBuf;

/// The user's home directory, from `$HOME`.
pub(crate) fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|p| !p.as_os_str().is_empty())
}

fn is_root() -> bool {
    // Reading our own /proc entry avoids an unsafe libc call.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|uids| uids.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

/// The edge's state directory: the flag, else `/var/lib/portless` for root, else
/// `$XDG_DATA_HOME/portless` or `~/.local/share/portless`.
pub(crate) fn state_dir(flag: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = flag {
        return dir;
    }
    if is_root() {
        return PathBuf::from("/var/lib/portless");
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(data).join("portless");
    }
    home()
        .map(|h| h.join(".local/share/portless"))
        .unwrap_or_else(|| PathBuf::from("portless-state"))
}

/// Where `tunnel create` writes credentials by default: `~/.portless/<id>.json`.
pub(crate) fn default_credentials_file(tunnel_id: &uuid::Uuid) -> PathBuf {
    home()
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".portless")
        .join(format!("{tunnel_id}.json"))
}
