//! The `portless` binary (work in progress).
fn main() {}
