//! The `schema:` form (a program's options and positionals) and its
//! `recipes:`, turned into an argv.
//!
//! Options come first, in the schema's order, each value right after its flag
//! (so it is the option's argument, never an option of its own); then the
//! positionals, after a `--` when one of them starts with `-`.

use serde_json::{Map, Value};

use super::CliTool;
use super::spec::{CliSchema, CliSpec, ValueType};
use super::template::{looks_like_option, scalar};
use crate::error::ToolError;
use crate::skills::ParamInfo;
use crate::tools::CallableInfo;

/// The parameters a schema gives `tools.<name>(...)`, after checking the
/// schema and its recipes against each other.
pub(super) fn parameters(schema: &CliSchema, spec: &CliSpec) -> Result<Vec<ParamInfo>, String> {
    if spec.args.is_some() {
        return Err("give either `args` (a template) or `schema`, not both".into());
    }
    if !spec.parameters.is_empty() {
        return Err(
            "`parameters` documents `args` placeholders; with `schema`, describe options there"
                .into(),
        );
    }
    let mut parameters: Vec<ParamInfo> = Vec::new();
    for (name, option) in &schema.options.0 {
        parameters.push(ParamInfo {
            name: py_name(name),
            ty: option.ty.name().into(),
            required: option.required,
            default: option.default.clone(),
            description: option.description.clone(),
        });
    }
    for p in &schema.positional {
        parameters.push(ParamInfo {
            name: py_name(&p.name),
            ty: p.ty.name().into(),
            required: p.required,
            default: p.default.clone(),
            description: p.description.clone(),
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = parameters.iter().find(|p| !seen.insert(p.name.as_str())) {
        return Err(format!("`schema` names `{}` twice", dup.name));
    }
    for (recipe, r) in &spec.recipes.0 {
        let known = |k: &str| parameters.iter().any(|p| p.name == py_name(k));
        if let Some(k) = r.preset.keys().find(|k| !known(k)) {
            return Err(format!(
                "recipe `{recipe}`: `preset` sets `{k}`, which `schema` does not describe"
            ));
        }
        if let Some((k, _)) = r.params.0.iter().find(|(k, _)| !known(k)) {
            return Err(format!(
                "recipe `{recipe}`: `params` names `{k}`, which `schema` does not describe"
            ));
        }
    }
    Ok(parameters)
}

impl CliTool {
    /// The argv (without the program) of recipe `recipe` with these arguments.
    pub fn recipe_argv(
        &self,
        recipe: &str,
        args: &Map<String, Value>,
    ) -> Result<Vec<String>, ToolError> {
        let Some((_, spec)) = self.spec.recipes.0.iter().find(|(n, _)| n == recipe) else {
            return Err(ToolError::NotFound {
                name: format!("{}.{recipe}", self.spec.name),
            });
        };
        if let Some(unknown) = args
            .keys()
            .find(|k| !spec.params.0.iter().any(|(p, _)| py_name(p) == **k))
        {
            let accepted: Vec<String> = spec.params.0.iter().map(|(p, _)| py_name(p)).collect();
            return Err(ToolError::InvalidArguments {
                tool: format!("{}.{recipe}", self.spec.name),
                message: format!(
                    "unexpected argument `{unknown}` (accepted: {}; `tools.{}(...)` takes every option)",
                    if accepted.is_empty() {
                        "none".to_owned()
                    } else {
                        accepted.join(", ")
                    },
                    self.spec.name
                ),
            });
        }
        let mut values: Map<String, Value> = spec
            .preset
            .iter()
            .map(|(k, v)| (py_name(k), v.clone()))
            .collect();
        for (name, param) in &spec.params.0 {
            let key = py_name(name);
            match args.get(&key) {
                Some(v) if !v.is_null() => {
                    values.insert(key, v.clone());
                }
                _ => match &param.default {
                    Some(default) => {
                        values.insert(key, default.clone());
                    }
                    None if param.required => {
                        return Err(ToolError::InvalidArguments {
                            tool: format!("{}.{recipe}", self.spec.name),
                            message: format!("missing required argument `{key}`"),
                        });
                    }
                    None => {}
                },
            }
        }
        self.schema_argv(&values)
    }

    /// The argv (without the program) for options and positionals given by name.
    pub fn schema_argv(&self, args: &Map<String, Value>) -> Result<Vec<String>, ToolError> {
        let schema = self.spec.schema.clone().unwrap_or_default();
        let invalid = |message: String| ToolError::InvalidArguments {
            tool: self.spec.name.clone(),
            message,
        };
        if let Some(unknown) = args
            .keys()
            .find(|k| !self.parameters.iter().any(|p| &p.name == *k))
        {
            let accepted: Vec<_> = self.parameters.iter().map(|p| p.name.as_str()).collect();
            return Err(invalid(format!(
                "unexpected argument `{unknown}` (accepted: {})",
                accepted.join(", ")
            )));
        }
        let value_of = |name: &str, default: &Option<Value>| -> Option<Value> {
            match args.get(&py_name(name)) {
                Some(v) if !v.is_null() => Some(v.clone()),
                _ => default.clone(),
            }
        };
        let mut argv = Vec::new();
        for (name, option) in &schema.options.0 {
            let key = py_name(name);
            let Some(value) = value_of(name, &option.default) else {
                if option.required {
                    return Err(invalid(format!("missing required argument `{key}`")));
                }
                continue;
            };
            let flag = option.flag(name);
            match (option.ty, &value) {
                (ValueType::Boolean, Value::Bool(true)) => argv.push(flag),
                (ValueType::Boolean, Value::Bool(false)) => {}
                (ValueType::Boolean, other) => {
                    return Err(invalid(format!(
                        "`{key}` is a flag: pass True or False, not {other}"
                    )));
                }
                (ValueType::Array, Value::Array(items)) => {
                    for item in items {
                        argv.push(flag.clone());
                        argv.push(typed(&key, ValueType::String, item).map_err(invalid)?);
                    }
                }
                (ty, value) => {
                    let ty = if ty == ValueType::Array {
                        ValueType::String
                    } else {
                        ty
                    };
                    argv.push(flag);
                    argv.push(typed(&key, ty, value).map_err(invalid)?);
                }
            }
        }
        let mut positional: Vec<String> = Vec::new();
        for p in &schema.positional {
            let key = py_name(&p.name);
            match (p.ty, value_of(&p.name, &p.default)) {
                (_, None) if p.required => {
                    return Err(invalid(format!("missing required argument `{key}`")));
                }
                (_, None) => {}
                (ValueType::Array, Some(Value::Array(items))) => {
                    for item in &items {
                        positional.push(typed(&key, ValueType::String, item).map_err(invalid)?);
                    }
                }
                (ty, Some(value)) => {
                    let ty = if ty == ValueType::Array {
                        ValueType::String
                    } else {
                        ty
                    };
                    positional.push(typed(&key, ty, &value).map_err(invalid)?);
                }
            }
        }
        // Positionals come last, so a `--` before them is always possible: a
        // value like `--files0-from=...` stays a value.
        if positional.iter().any(|w| looks_like_option(w)) {
            argv.push("--".into());
        }
        argv.extend(positional);
        Ok(argv)
    }

    /// The recipes as callables, parameters described by the schema.
    pub(super) fn recipe_infos(&self) -> Vec<CallableInfo> {
        self.spec
            .recipes
            .0
            .iter()
            .map(|(name, recipe)| CallableInfo {
                name: name.clone(),
                description: recipe.description.clone(),
                parameters: recipe
                    .params
                    .0
                    .iter()
                    .map(|(p, spec)| {
                        let key = py_name(p);
                        let base = self.parameters.iter().find(|i| i.name == key);
                        ParamInfo {
                            ty: spec
                                .ty
                                .map(|t| t.name().to_owned())
                                .or_else(|| base.map(|b| b.ty.clone()))
                                .unwrap_or_else(|| ValueType::default().name().into()),
                            required: spec.required
                                || (spec.default.is_none() && base.is_some_and(|b| b.required)),
                            default: spec.default.clone(),
                            description: if spec.description.is_empty() {
                                base.map(|b| b.description.clone()).unwrap_or_default()
                            } else {
                                spec.description.clone()
                            },
                            name: key,
                        }
                    })
                    .collect(),
            })
            .collect()
    }
}

/// How agent code spells an option: `max-time` is called as `max_time=`.
pub(super) fn py_name(name: &str) -> String {
    name.replace('-', "_")
}

fn typed(name: &str, ty: ValueType, value: &Value) -> Result<String, String> {
    match (ty, value) {
        (ValueType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        (ValueType::Integer, Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
            Ok(s.trim().to_owned())
        }
        (ValueType::Integer, other) => Err(format!("`{name}` must be an integer, not {other}")),
        (ValueType::Number, Value::Number(n)) => Ok(n.to_string()),
        (ValueType::Number, other) => Err(format!("`{name}` must be a number, not {other}")),
        (_, other) => scalar(name, other),
    }
}
