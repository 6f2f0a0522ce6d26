//! Snapshots of what a user sees for every file under `tests/policy/`:
//!
//! * `invalid/*.yml`: the full error text, as `portless` prints it when refusing the file;
//! * `valid/*.yml`: the warnings, one after another (empty when there are none).
//!
//! Paths are made relative to the crate so the snapshots do not depend on where the
//! repository is checked out. After an intended change:
//! `INSTA_UPDATE=always cargo test -p portless-access --test policy_messages`, then read every
//! changed `.snap` file as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use portless_access::config::AccessConfig;

fn stable_paths(text: &str) -> String {
    text.replace(&format!("{}/", env!("CARGO_MANIFEST_DIR")), "")
}

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings
        .set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/policy/snapshots"));
    settings
}

/// The `.yml` files of `tests/policy/<dir>`, sorted, with their stem (the snapshot name).
fn files(dir: &str) -> Vec<(String, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/policy")
        .join(dir);
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yml"))
        .map(|path| {
            (
                path.file_stem().unwrap().to_string_lossy().into_owned(),
                path,
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no files in {}", dir.display());
    out
}

#[test]
fn invalid_files_errors() {
    settings().bind(|| {
        for (name, path) in files("invalid") {
            let text = match AccessConfig::load(&path) {
                Ok(_) => panic!("{}: loaded but should be refused", path.display()),
                Err(errors) => stable_paths(&errors.to_string()),
            };
            insta::assert_snapshot!(format!("errors@{name}"), text);
        }
    });
}

#[test]
fn valid_files_warnings() {
    settings().bind(|| {
        for (name, path) in files("valid") {
            let loaded = AccessConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
            let shown: Vec<String> = loaded
                .warnings
                .iter()
                .map(|w| stable_paths(&w.to_string()))
                .collect();
            insta::assert_snapshot!(format!("warnings@{name}"), shown.join("\n"));
        }
    });
}
