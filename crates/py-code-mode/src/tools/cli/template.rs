//! The seed's `args:` template (`"{flags} {target}"`) and how keyword
//! arguments fill it into an argv.
//!
//! A value is one argv word, never an option, unless its placeholder takes
//! flags (`{flags}`, or one declared `flags: true`): only then is it split into
//! words. A value in any other slot that starts with `-` goes after a `--`
//! when every later word is positional, and is refused otherwise.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::spec::{ArgsTemplate, CliSpec};
use crate::error::ToolError;
use crate::skills::ParamInfo;

/// The placeholder the seed's templates use for options: it takes flags
/// unless its `parameters` entry says `flags: false`.
const FLAGS_PLACEHOLDER: &str = "flags";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Placeholder(String),
}

/// A parsed `args:` template.
#[derive(Debug, Default)]
pub(super) struct Template {
    tokens: Vec<Vec<Segment>>,
    /// Placeholders whose values may hold options.
    flags: BTreeSet<String>,
}

/// Where an argv word came from, to know whether it may be an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Written by the tool's author (a literal, or a token that starts with one).
    Author,
    /// From a placeholder that takes flags.
    Flags,
    /// Starts with a value from agent code: never an option.
    Value,
}

impl Template {
    /// Parses the template and describes its placeholders as parameters.
    pub(super) fn parse(spec: &CliSpec) -> Result<(Self, Vec<ParamInfo>), String> {
        let tokens = match &spec.args {
            None => Vec::new(),
            Some(ArgsTemplate::Tokens(tokens)) => tokens.clone(),
            Some(ArgsTemplate::Line(line)) => {
                shell_words::split(line).map_err(|e| format!("`args`: {e}"))?
            }
        };
        let tokens = tokens
            .iter()
            .map(|t| parse_token(t))
            .collect::<Result<Vec<_>, _>>()?;
        let mut parameters: Vec<ParamInfo> = Vec::new();
        let mut flags = BTreeSet::new();
        for segment in tokens.iter().flatten() {
            if let Segment::Placeholder(name) = segment
                && !parameters.iter().any(|p| &p.name == name)
            {
                let doc = spec.parameters.get(name).cloned().unwrap_or_default();
                if doc.flags.unwrap_or(name == FLAGS_PLACEHOLDER) {
                    flags.insert(name.clone());
                }
                parameters.push(ParamInfo {
                    name: name.clone(),
                    ty: doc.ty.unwrap_or_default().name().into(),
                    required: doc.required,
                    default: doc.default,
                    description: doc.description,
                });
            }
        }
        if let Some(unknown) = spec
            .parameters
            .keys()
            .find(|k| !parameters.iter().any(|p| &p.name == *k))
        {
            return Err(format!(
                "`parameters` documents `{unknown}`, which `args` does not use"
            ));
        }
        if let Some(embedded) = flags.iter().find(|name| {
            tokens.iter().any(|token| {
                token.len() > 1 && token.contains(&Segment::Placeholder((*name).clone()))
            })
        }) {
            return Err(format!(
                "`{{{embedded}}}` takes flags, so it must be a whole token of `args`, not part of one"
            ));
        }
        Ok((Self { tokens, flags }, parameters))
    }

    /// The argv (without the program) for these arguments.
    pub(super) fn argv(
        &self,
        tool: &str,
        parameters: &[ParamInfo],
        args: &Map<String, Value>,
    ) -> Result<Vec<String>, ToolError> {
        let invalid = |message: String| ToolError::InvalidArguments {
            tool: tool.to_owned(),
            message,
        };
        if let Some(unknown) = args
            .keys()
            .find(|k| !parameters.iter().any(|p| &p.name == *k))
        {
            let accepted: Vec<_> = parameters.iter().map(|p| p.name.as_str()).collect();
            return Err(invalid(format!(
                "unexpected argument `{unknown}` (accepted: {})",
                if accepted.is_empty() {
                    "none".to_owned()
                } else {
                    accepted.join(", ")
                }
            )));
        }
        let value_of = |name: &str| -> Option<Value> {
            match args.get(name) {
                Some(v) if !v.is_null() => Some(v.clone()),
                _ => parameters
                    .iter()
                    .find(|p| p.name == name)
                    .and_then(|p| p.default.clone()),
            }
        };
        for p in parameters.iter().filter(|p| p.required) {
            if value_of(&p.name).is_none() {
                return Err(invalid(format!("missing required argument `{}`", p.name)));
            }
        }
        // Each word with its origin and, for values, the placeholder it fills.
        let mut words: Vec<(String, Origin, Option<&str>)> = Vec::new();
        for token in &self.tokens {
            if let [Segment::Placeholder(name)] = token.as_slice() {
                let origin = if self.flags.contains(name) {
                    Origin::Flags
                } else {
                    Origin::Value
                };
                match value_of(name) {
                    None | Some(Value::Bool(false)) => {}
                    Some(Value::Array(items)) => {
                        for item in items {
                            let word = scalar(name, &item).map_err(invalid)?;
                            words.push((word, origin, Some(name.as_str())));
                        }
                    }
                    // Split like a shell splits words (quotes respected, nothing
                    // expanded), so `flags="-sV -T4"` gives two flags. Nothing
                    // here can run a command: the words go to the program as-is.
                    Some(Value::String(s)) if origin == Origin::Flags => {
                        match shell_words::split(&s) {
                            Ok(split) => {
                                words.extend(
                                    split.into_iter().map(|w| (w, origin, Some(name.as_str()))),
                                );
                            }
                            Err(_) => words.push((s, origin, Some(name.as_str()))),
                        }
                    }
                    Some(other) => {
                        let word = scalar(name, &other).map_err(invalid)?;
                        words.push((word, origin, Some(name.as_str())));
                    }
                }
                continue;
            }
            let mut arg = String::new();
            let mut complete = true;
            for segment in token {
                match segment {
                    Segment::Literal(text) => arg.push_str(text),
                    Segment::Placeholder(name) => match value_of(name) {
                        Some(v) => arg.push_str(&scalar(name, &v).map_err(invalid)?),
                        None => complete = false,
                    },
                }
            }
            // `--port={port}` without a port is left out rather than sent half-filled.
            if complete {
                let led_by = match token.first() {
                    Some(Segment::Placeholder(name)) => Some(name.as_str()),
                    _ => None,
                };
                let origin = if led_by.is_some() {
                    Origin::Value
                } else {
                    Origin::Author
                };
                words.push((arg, origin, led_by));
            }
        }
        end_options_before_values(tool, words)
    }
}

/// A word the program would read as an option (`-x`, `--x`; a lone `-` is the
/// usual name of stdin).
pub(super) fn looks_like_option(word: &str) -> bool {
    word.len() > 1 && word.starts_with('-')
}

/// The argv, with `--` before the first value that looks like an option, when
/// everything from there on is positional; refused otherwise.
fn end_options_before_values(
    tool: &str,
    words: Vec<(String, Origin, Option<&str>)>,
) -> Result<Vec<String>, ToolError> {
    let ended = |upto: usize| {
        words[..upto]
            .iter()
            .any(|(w, o, _)| w == "--" && *o != Origin::Value)
    };
    let Some(first) = words
        .iter()
        .position(|(w, o, _)| *o == Origin::Value && looks_like_option(w))
    else {
        return Ok(words.into_iter().map(|(w, _, _)| w).collect());
    };
    if ended(first) {
        return Ok(words.into_iter().map(|(w, _, _)| w).collect());
    }
    let options_follow = words[first..]
        .iter()
        .any(|(w, o, _)| *o == Origin::Flags || (*o == Origin::Author && looks_like_option(w)));
    if options_follow {
        let (word, _, name) = &words[first];
        return Err(ToolError::InvalidArguments {
            tool: tool.to_owned(),
            message: format!(
                "the value of `{}` starts with `-` (`{}`), so the program would read it as an option; options come only through a flags placeholder\nhint: pass a path as `./{}`",
                name.unwrap_or_default(),
                excerpt(word),
                excerpt(word)
            ),
        });
    }
    let mut argv: Vec<String> = Vec::with_capacity(words.len() + 1);
    for (i, (word, _, _)) in words.into_iter().enumerate() {
        if i == first {
            argv.push("--".into());
        }
        argv.push(word);
    }
    Ok(argv)
}

/// The start of a value quoted in an error message.
fn excerpt(word: &str) -> &str {
    const MAX: usize = 80;
    if word.len() <= MAX {
        return word;
    }
    let mut end = MAX;
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    &word[..end]
}

pub(super) fn scalar(name: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!(
            "argument `{name}` must be a string, number or boolean here, not {other}"
        )),
    }
}

fn parse_token(token: &str) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut chars = token.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let valid = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(format!("`args`: bad placeholder `{{{name}}}` in `{token}`"));
                }
                if !literal.is_empty() {
                    segments.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                segments.push(Segment::Placeholder(name));
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    Ok(segments)
}
