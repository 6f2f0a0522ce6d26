//! Values that must be one word out of a fixed set (`protocol: quic`, `output: json`).

/// A word that is not one of the accepted choices.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not one of {}", .choices.join(", "))]
pub struct UnknownChoice {
    value: String,
    choices: &'static [&'static str],
}

impl UnknownChoice {
    pub(crate) fn new(value: &str, choices: &'static [&'static str]) -> Self {
        UnknownChoice {
            value: value.to_owned(),
            choices,
        }
    }

    /// The word as written.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The accepted words.
    pub fn choices(&self) -> &'static [&'static str] {
        self.choices
    }
}
