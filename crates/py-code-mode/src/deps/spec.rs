//! Requirement specs agent code may ask for: PEP 508 names, extras and
//! version specifiers, and nothing else.
//!
//! The spec goes on an installer's command line (after `--`), so anything pip
//! or a shell could read as something other than a package is refused here,
//! before any process starts: options (`--index-url`, `-e`), paths, URLs
//! (`pkg @ https://...`), environment markers, quotes and shell characters.

use std::fmt;

/// The longest spec accepted, in bytes: real requirement lines are far shorter,
/// and the list is stored and shown whole.
pub const MAX_SPEC_LEN: usize = 200;

/// The comparison operators of PEP 440, longest first so `===` wins over `==`.
const OPERATORS: [&str; 8] = ["===", "~=", "==", "!=", "<=", ">=", "<", ">"];

/// A validated requirement: `name[extras]<specifiers>`, spaces removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The name as given (`Pillow`).
    pub name: String,
    /// The canonical name for comparisons (`pillow`; `_` and `.` become `-`).
    pub key: String,
    /// The whole spec in canonical spelling (`pandas[excel]>=2,<3`).
    pub spec: String,
}

impl Requirement {
    /// `Some(None)` for a bare name (any version will do), `Some(Some(v))`
    /// for one exact pin `==v`, `None` for anything else.
    pub fn exact_version(&self) -> Option<Option<&str>> {
        let rest = self.spec.get(self.name.len()..)?;
        let rest = match rest.strip_prefix('[') {
            Some(after) => after.split_once(']').map_or("", |(_, r)| r),
            None => rest,
        };
        if rest.is_empty() {
            return Some(None);
        }
        let pin = rest.strip_prefix("==")?;
        (!pin.contains([',', '*']) && !pin.starts_with('=')).then_some(Some(pin))
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

/// Why a spec was refused; the message names the spec and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{spec}` is not an allowed package spec: {reason}\nhint: give a package name with optional extras and version specifiers, such as `requests` or `pandas[excel]>=2,<3`"
)]
pub struct SpecError {
    pub spec: String,
    pub reason: &'static str,
}

/// The canonical form of a distribution name (PEP 503).
pub fn canonical_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// A PEP 508 name: letters and digits, with `.`, `_`, `-` inside.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(is_name_char)
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A PEP 440 version (or prefix match `1.2.*`), loosely: what a specifier may compare with.
fn valid_version(version: &str) -> bool {
    !version.is_empty()
        && version.starts_with(|c: char| c.is_ascii_alphanumeric())
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '*' | '+' | '!' | '_' | '-'))
}

/// Parses and validates one spec.
pub fn parse(spec: &str) -> Result<Requirement, SpecError> {
    let refuse = |reason| SpecError {
        spec: spec.chars().take(MAX_SPEC_LEN).collect(),
        reason,
    };
    if spec.len() > MAX_SPEC_LEN {
        return Err(refuse("it is longer than 200 bytes"));
    }
    let text = spec.trim();
    if text.is_empty() {
        return Err(refuse("it is empty"));
    }
    if text.starts_with('-') {
        return Err(refuse("installer options are not allowed"));
    }
    if text.contains('@') || text.contains("://") {
        return Err(refuse("URLs are not allowed"));
    }
    if text.contains(['/', '\\']) || text.starts_with('.') || text.starts_with('~') {
        return Err(refuse("paths are not allowed"));
    }
    if text.contains(';') {
        return Err(refuse("environment markers are not allowed"));
    }
    let name_end = text.find(|c: char| !is_name_char(c)).unwrap_or(text.len());
    let name = &text[..name_end];
    if !valid_name(name) {
        return Err(refuse(
            "the name must be letters and digits, with `.`, `_` or `-` inside",
        ));
    }
    let mut rest = text[name_end..].trim_start();
    let mut canonical = name.to_owned();
    if let Some(after) = rest.strip_prefix('[') {
        let Some(close) = after.find(']') else {
            return Err(refuse("the extras are not closed with `]`"));
        };
        let extras: Vec<&str> = after[..close].split(',').map(str::trim).collect();
        if extras.iter().any(|e| !valid_name(e)) {
            return Err(refuse("an extra must be a name"));
        }
        canonical.push('[');
        canonical.push_str(&extras.join(","));
        canonical.push(']');
        rest = after[close + 1..].trim_start();
    }
    if !rest.is_empty() {
        let mut clauses = Vec::new();
        for clause in rest.split(',') {
            let clause = clause.trim();
            let Some(op) = OPERATORS.iter().find(|op| clause.starts_with(**op)) else {
                return Err(refuse(
                    "after the name come only version specifiers such as `>=2,<3`",
                ));
            };
            let version = clause[op.len()..].trim();
            if !valid_version(version) {
                return Err(refuse("a version must be letters, digits and `.*+!_-`"));
            }
            clauses.push(format!("{op}{version}"));
        }
        canonical.push_str(&clauses.join(","));
    }
    Ok(Requirement {
        key: canonical_name(name),
        name: name.to_owned(),
        spec: canonical,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_extras_and_specifiers_are_accepted_and_canonical() {
        let r = parse(" Pandas[excel, sql] >= 2 , <3 ").ok();
        assert_eq!(
            r.as_ref().map(|r| (r.key.as_str(), r.spec.as_str())),
            Some(("pandas", "Pandas[excel,sql]>=2,<3"))
        );
        assert_eq!(
            parse("zope.interface").ok().map(|r| r.key),
            Some("zope-interface".into())
        );
        assert_eq!(
            parse("six==1.16.*").ok().map(|r| r.spec),
            Some("six==1.16.*".into())
        );
        assert_eq!(canonical_name("Foo__Bar.baz"), "foo-bar-baz");
    }

    #[test]
    fn anything_an_installer_or_shell_could_misread_is_refused() {
        for bad in [
            "",
            "--index-url=http://evil/simple",
            "-e .",
            "-r requirements.txt",
            "six --index-url http://evil",
            "six; os_name=='nt'",
            "pkg @ https://evil/pkg.whl",
            "https://evil/pkg.whl",
            "./local",
            "/tmp/pkg",
            "..",
            "six$(id)",
            "six`id`",
            "six && rm -rf /",
            "six\n--extra-index-url=x",
            "six[--x]",
            "six==",
            "six>=1 2",
            &"a".repeat(201),
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
