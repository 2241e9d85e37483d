//! Validation of the names users and agents give to skills and artifacts.
//!
//! Names become file names and Redis keys, so a name that could escape its folder
//! or key prefix is refused before any backend sees it.

use crate::error::NameError;

/// Longest skill name accepted; skill names become Python attributes and file names.
const MAX_SKILL_NAME: usize = 64;
/// Longest artifact name accepted; keeps paths well under file-system limits.
const MAX_ARTIFACT_NAME: usize = 200;

/// Names the `skills` namespace uses for its own methods.
pub const RESERVED_SKILL_NAMES: &[&str] = &["list", "search", "get", "create", "delete", "invoke"];

const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// A skill name is a Python identifier (it is called as `skills.<name>()`).
pub fn validate_skill_name(name: &str) -> Result<(), NameError> {
    let refuse = |reason: &str| {
        Err(NameError {
            kind: "skill",
            name: name.to_owned(),
            reason: reason.to_owned(),
        })
    };
    let mut chars = name.chars();
    match chars.next() {
        None => return refuse("it is empty"),
        Some(c) if !(c.is_ascii_alphabetic() || c == '_') => {
            return refuse("it must start with a letter or `_`");
        }
        Some(_) => {}
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return refuse("it may hold only letters, digits and `_` (a Python identifier)");
    }
    if name.starts_with('_') {
        return refuse("names starting with `_` are private");
    }
    if name.len() > MAX_SKILL_NAME {
        return refuse(&format!("it is longer than {MAX_SKILL_NAME} characters"));
    }
    if PYTHON_KEYWORDS.contains(&name) {
        return refuse("it is a Python keyword");
    }
    if RESERVED_SKILL_NAMES.contains(&name) {
        return refuse("the `skills` namespace uses it as a method");
    }
    Ok(())
}

/// An artifact name is one or more `/`-separated parts of letters, digits, `.`,
/// `_`, `-`, `@`, `+`, `=`, `,` and spaces; no part may start with `.`, so `..`,
/// hidden files and the metadata folder are out of reach.
pub fn validate_artifact_name(name: &str) -> Result<(), NameError> {
    let refuse = |reason: &str| {
        Err(NameError {
            kind: "artifact",
            name: name.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if name.is_empty() {
        return refuse("it is empty");
    }
    if name.len() > MAX_ARTIFACT_NAME {
        return refuse(&format!("it is longer than {MAX_ARTIFACT_NAME} bytes"));
    }
    for part in name.split('/') {
        if part.is_empty() {
            return refuse("it has an empty path part (leading, trailing or doubled `/`)");
        }
        if part.starts_with('.') {
            return refuse("a path part may not start with `.`");
        }
        if part.trim() != part {
            return refuse("a path part may not start or end with a space");
        }
        if let Some(c) = part.chars().find(|c| {
            !(c.is_ascii_alphanumeric()
                || matches!(c, '.' | '_' | '-' | '@' | '+' | '=' | ',' | ' '))
        }) {
            return refuse(&format!("it contains `{}`", c.escape_default()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skill_names_are_identifiers_and_not_reserved() {
        for ok in ["analyze_url", "scan2", "A"] {
            assert!(validate_skill_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "../x", "a-b", "2x", "_private", "list", "class", "a/b", "é",
        ] {
            assert!(validate_skill_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn artifact_names_cannot_escape_the_folder() {
        for ok in ["results.json", "10.0.0.1.md", "scans/host a.txt", "x"] {
            assert!(validate_artifact_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../etc/passwd",
            "/abs",
            "a/../b",
            "a//b",
            ".meta/x",
            "a/.hidden",
            "a\\b",
            "a\0b",
            "x/",
            " x",
        ] {
            assert!(validate_artifact_name(bad).is_err(), "{bad:?}");
        }
    }
}
