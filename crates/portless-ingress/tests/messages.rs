//! Snapshots of what a user sees for every config under `tests/configs/`.
//!
//! * `invalid/*.yml`: the full error text (`ConfigErrors`'s Display), exactly as
//!   `portless tunnel ingress validate` prints it;
//! * `valid/*.yml`: the warnings, one after another (an empty snapshot when there are none).
//!
//! The file path in the text is made relative to the crate (`tests/configs/...`) so the
//! snapshots do not depend on where the repository is checked out. `corpus.rs` checks the
//! positions and the key phrases of the same files through the `.expected` files; these
//! snapshots pin the whole wording, so a message change shows up as a reviewable diff.
//!
//! After an intended change: `INSTA_UPDATE=always cargo test -p portless-ingress --test
//! messages`, then read every changed `.snap` file as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Mutex, PoisonError};

use portless_ingress::TunnelConfig;

/// insta counts `glob!` failures process-wide: two globs running at once would each report
/// the other's failures. The tests take turns.
static ONE_GLOB_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `text` with the crate's absolute directory removed from every path.
fn stable_paths(text: &str) -> String {
    let root = format!("{}/", env!("CARGO_MANIFEST_DIR"));
    text.replace(&root, "")
}

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings
}

#[test]
fn invalid_config_errors() {
    let _turn = ONE_GLOB_AT_A_TIME
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    settings().bind(|| {
        insta::glob!("configs/invalid/*.yml", |path| {
            let text = match TunnelConfig::load(path) {
                Ok(_) => panic!("{}: loaded but should be refused", path.display()),
                Err(errors) => stable_paths(&errors.to_string()),
            };
            insta::assert_snapshot!("errors", text);
        });
    });
}

#[test]
fn valid_config_warnings() {
    let _turn = ONE_GLOB_AT_A_TIME
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    settings().bind(|| {
        insta::glob!("configs/valid/*.yml", |path| {
            let loaded = TunnelConfig::load(path)
                .unwrap_or_else(|errors| panic!("{}: refused:\n{errors}", path.display()));
            let shown: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
            insta::assert_snapshot!("warnings", stable_paths(&shown.join("\n")));
        });
    });
}
