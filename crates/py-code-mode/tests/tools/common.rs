use std::sync::Arc;

use py_code_mode::{ToolAdapter, ToolRegistry, ToolSource, parse_definition};
use serde_json::{Map, Value};

/// One tool from YAML text, as the registry would load it.
pub fn tool(yaml: &str) -> Arc<dyn ToolAdapter> {
    parse_definition(&ToolSource {
        origin: "test.yaml".into(),
        text: yaml.to_owned(),
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

pub fn registry(tools: &[&str]) -> ToolRegistry {
    let mut registry = ToolRegistry::default();
    for yaml in tools {
        registry.insert(tool(yaml));
    }
    registry
}

pub fn args(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// Quotes a path for a YAML scalar.
pub fn q(path: &std::path::Path) -> String {
    format!("{:?}", path.display().to_string())
}
