//! The YAML parser's messages in the words of someone editing a file: on one line, without
//! the location and source snippet (the diagnostic prints the location itself), without
//! advice meant for programs embedding the parser, and with its event names replaced.

use serde_saphyr::{DefaultMessageFormatter, MessageFormatter};

/// The parser's message without its location suffix and source snippet, on one line: the
/// formatter may pass through control characters from the input, which become spaces.
pub fn parser_message(error: &serde_saphyr::Error) -> String {
    DefaultMessageFormatter
        .format_message(error.without_snippet())
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `message` (from [`parser_message`]) without advice meant for programs embedding the
/// parser, and with its event names ("sequence start") replaced by what the user wrote or
/// should write.
pub fn plain_parser_message(message: &str) -> String {
    // "duplicate mapping key: service, set DuplicateKeyPolicy in Options if acceptable"
    let message = message
        .split_once(", set DuplicateKeyPolicy")
        .map_or(message, |(head, _)| head);
    message
        .replace("expected sequence start", "expected a list")
        .replace(
            "expected mapping start",
            "expected a mapping (`key: value` lines)",
        )
}

/// Whether a file holds nothing but comments, blank lines and document markers (an empty
/// file, which each format refuses with its own advice).
pub fn is_blank(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|line| line.is_empty() || line.starts_with('#') || line == "---" || line == "...")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn blank_means_only_comments_and_markers() {
        assert!(is_blank(""));
        assert!(is_blank("# only a comment\n\n---\n...\n"));
        assert!(!is_blank("tunnel: x"));
    }

    #[test]
    fn plain_messages_drop_program_advice_and_name_what_to_write() {
        assert_eq!(
            plain_parser_message(
                "duplicate mapping key: service, set DuplicateKeyPolicy in Options if acceptable"
            ),
            "duplicate mapping key: service"
        );
        assert_eq!(
            plain_parser_message("expected sequence start"),
            "expected a list"
        );
        assert_eq!(
            plain_parser_message("expected mapping start"),
            "expected a mapping (`key: value` lines)"
        );
    }

    #[test]
    fn parser_messages_are_one_line_without_snippet() {
        let e = serde_saphyr::from_str::<Vec<u32>>("- 1\n- x\n").unwrap_err();
        let message = parser_message(&e);
        assert!(!message.contains('\n'), "{message}");
        assert!(!message.is_empty());
    }
}
