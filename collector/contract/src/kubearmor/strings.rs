//! Helpers on strings: trimmed values and clipped error text.

/// The trimmed value, `None` when absent or blank.
pub(super) fn text(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub(super) fn owned(value: &Option<String>) -> Option<String> {
    text(value).map(str::to_owned)
}

/// `s`, shortened to 80 characters for error messages.
pub(super) fn clip(s: &str) -> String {
    const MAX: usize = 80;
    match s.char_indices().nth(MAX) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}
