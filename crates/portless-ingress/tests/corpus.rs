//! Loads every config under `tests/configs/`.
//!
//! * `valid/*.yml` must load. If a sibling `.expected` file exists it lists the warnings the
//!   user must see; otherwise the file must load without warnings.
//! * `invalid/*.yml` must be refused, and the sibling `.expected` file lists the errors.
//!
//! An `.expected` file holds one line per diagnostic, in file order: `LINE:COL text`, where
//! `text` must appear in what the user sees (`\n` stands for a line break) and `-:-` stands
//! for "no position". Lines starting with `#` are comments.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs;
use std::path::{Path, PathBuf};

use portless_ingress::{Position, TunnelConfig};

struct Expected {
    position: Option<Position>,
    text: String,
}

fn configs(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .collect();
    files.sort();
    files
}

fn expectations(config: &Path) -> Option<Vec<Expected>> {
    let text = fs::read_to_string(config.with_extension("expected")).ok()?;
    let parsed = text
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (at, text) = line.split_once(' ').expect("`LINE:COL text`");
            let position = (at != "-:-").then(|| {
                let (l, c) = at.split_once(':').expect("LINE:COL");
                Position {
                    line: l.parse().unwrap(),
                    column: c.parse().unwrap(),
                }
            });
            Expected {
                position,
                text: text.replace("\\n", "\n"),
            }
        })
        .collect();
    Some(parsed)
}

/// Compares what the user would see with the expectations; returns the mismatches.
fn compare(file: &Path, seen: &[(Option<Position>, String)], expected: &[Expected]) -> Vec<String> {
    let mut problems = Vec::new();
    if seen.len() != expected.len() {
        let shown: Vec<&str> = seen.iter().map(|(_, s)| s.as_str()).collect();
        problems.push(format!(
            "{}: expected {} diagnostics, got {}:\n{}",
            file.display(),
            expected.len(),
            seen.len(),
            shown.join("\n")
        ));
        return problems;
    }
    for ((position, shown), want) in seen.iter().zip(expected) {
        if *position != want.position || !shown.contains(&want.text) {
            problems.push(format!(
                "{}: expected at {:?} text {:?}\n  got at {:?}:\n{shown}",
                file.display(),
                want.position,
                want.text,
                position
            ));
        }
    }
    problems
}

#[test]
fn every_valid_config_loads() {
    let files = configs("valid");
    assert!(files.len() >= 15, "only {} valid configs", files.len());
    let mut problems = Vec::new();
    for file in &files {
        match TunnelConfig::load(file) {
            Err(errors) => problems.push(format!("{}: refused:\n{errors}", file.display())),
            Ok(loaded) => {
                let seen: Vec<_> = loaded
                    .warnings
                    .iter()
                    .map(|w| (Some(w.position()), w.to_string()))
                    .collect();
                let expected = expectations(file).unwrap_or_default();
                problems.extend(compare(file, &seen, &expected));
                // Every valid config must route *something*: the catch-all answers any host.
                let ingress = &loaded.config.ingress;
                let last = ingress.rules().len() - 1;
                assert_eq!(ingress.find("no-such-host.invalid", "/").index, last);
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
}

#[test]
fn every_invalid_config_is_refused_with_the_expected_errors() {
    let files = configs("invalid");
    assert!(files.len() >= 15, "only {} invalid configs", files.len());
    let mut problems = Vec::new();
    for file in &files {
        let Some(expected) = expectations(file) else {
            problems.push(format!("{}: no .expected file", file.display()));
            continue;
        };
        match TunnelConfig::load(file) {
            Ok(_) => problems.push(format!("{}: loaded but should be refused", file.display())),
            Err(errors) => {
                let seen: Vec<_> = errors
                    .iter()
                    .map(|e| (e.position(), e.to_string()))
                    .collect();
                problems.extend(compare(file, &seen, &expected));
                for error in &errors {
                    // Every message names the file and offers a fix.
                    let shown = error.to_string();
                    assert!(shown.starts_with(&file.display().to_string()), "{shown}");
                    assert!(shown.contains("\n  fix: "), "{shown}");
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
}

#[test]
fn the_corpus_covers_many_shapes() {
    let total = configs("valid").len() + configs("invalid").len();
    assert!(total >= 40, "only {total} configs under tests/configs");
}
