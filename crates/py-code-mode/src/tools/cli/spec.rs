//! A CLI tool definition as written in YAML: the seed's `args:` template or the
//! later `schema:` with `recipes:`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::skills::ParamInfo;
use crate::tools::ToolKind;

/// A CLI tool definition as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CliSpec {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: Option<ToolKind>,
    /// The program to run; defaults to `name`.
    #[serde(default)]
    pub command: Option<String>,
    /// The argument template: a string split like a shell would (without
    /// expanding anything), or a list of tokens.
    #[serde(default)]
    pub args: Option<ArgsTemplate>,
    /// Variables added to the allow-listed environment the program gets;
    /// `${VAR}` is read from the host's environment at call time.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub description: String,
    /// Seconds.
    #[serde(default)]
    pub timeout: Option<f64>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Optional documentation of the placeholders.
    #[serde(default)]
    pub parameters: BTreeMap<String, PlaceholderSpec>,
    /// The program's options and positionals (the form with recipes).
    #[serde(default)]
    pub schema: Option<CliSchema>,
    /// Named presets of the schema, called as `tools.<name>.<recipe>(...)`.
    #[serde(default)]
    pub recipes: Ordered<RecipeSpec>,
}

/// A YAML mapping that keeps its order (options become flags in this order).
#[derive(Debug, Clone)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    items.push(entry);
                }
                Ok(Ordered(items))
            }
        }
        deserializer.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

/// The options and positionals of a CLI program.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CliSchema {
    #[serde(default)]
    pub options: Ordered<OptionSpec>,
    #[serde(default)]
    pub positional: Vec<PositionalSpec>,
}

/// The type of a parameter: an option, a positional, a placeholder, an HTTP
/// query or body field. Listed as its lowercase name (`"integer"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    Boolean,
    #[default]
    String,
    Integer,
    Number,
    Array,
}

impl ValueType {
    /// The name listings show (`ParamInfo::ty`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Array => "array",
        }
    }
}

/// One option of a CLI program.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionSpec {
    #[serde(rename = "type", default)]
    pub ty: ValueType,
    /// A one-letter alias: `short: s` gives `-s`.
    #[serde(default)]
    pub short: Option<String>,
    /// The exact flag, when it is neither `-x` nor `--name` (`-sV`, `+short`).
    #[serde(default)]
    pub flag: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<Value>,
}

impl OptionSpec {
    pub(super) fn flag(&self, name: &str) -> String {
        match (&self.flag, &self.short) {
            (Some(flag), _) => flag.clone(),
            (None, Some(short)) => format!("-{short}"),
            (None, None) if name.chars().count() == 1 => format!("-{name}"),
            (None, None) => format!("--{name}"),
        }
    }
}

/// One positional argument, after the options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionalSpec {
    pub name: String,
    #[serde(rename = "type", default)]
    pub ty: ValueType,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub default: Option<Value>,
}

/// A named preset: fixed option values plus the parameters the caller gives.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeSpec {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub preset: Map<String, Value>,
    #[serde(default)]
    pub params: Ordered<ParamSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ArgsTemplate {
    Line(String),
    Tokens(Vec<String>),
}

/// What a definition may say about one parameter (a recipe's, an HTTP
/// endpoint's).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(rename = "type", default)]
    pub ty: Option<ValueType>,
}

impl ParamSpec {
    pub(crate) fn into_info(self, name: String) -> ParamInfo {
        ParamInfo {
            name,
            ty: self.ty.unwrap_or_default().name().into(),
            required: self.required,
            default: self.default,
            description: self.description,
        }
    }
}

/// What a definition may say about one placeholder of an `args:` template.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceholderSpec {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(rename = "type", default)]
    pub ty: Option<ValueType>,
    /// The placeholder takes options: its value is split into words, each of
    /// which may be a flag. Only `{flags}` does by default; every other
    /// placeholder is exactly one argument and never an option.
    #[serde(default)]
    pub flags: Option<bool>,
}
