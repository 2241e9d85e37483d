//! Skills: reusable Python recipes with a `run()` function.
//!
//! Metadata (description, parameters) is read statically from the source with a
//! Python parser; skill code never runs on the host. It runs only inside an
//! executor, where the runtime fetches the source with `skills.get`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use ruff_python_ast::visitor::{Visitor, walk_expr};
use ruff_python_ast::{Expr, Stmt};
use ruff_text_size::Ranged;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, SkillError};
use crate::names::validate_skill_name;
use crate::search::SearchDoc;
use crate::storage::{
    MAX_SKILL_HISTORY, Provenance, SkillEntry, SkillRecord, SkillVersion, Storage,
};
use crate::tools::ToolInfo;

/// A parameter of a skill's `run()` or of a tool callable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamInfo {
    pub name: String,
    /// The annotation as written (`str`, `list[int]`), or `any`.
    #[serde(rename = "type")]
    pub ty: String,
    pub required: bool,
    /// The default: a JSON value for literals, else the expression's source text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(default)]
    pub description: String,
}

/// What `skills.list()` and `skills.search()` return for each skill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkillInfo {
    pub name: String,
    pub description: String,
    pub parameters: Vec<ParamInfo>,
    pub is_async: bool,
    pub created_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
    /// The current version (1 for the first); `None` for a skill saved
    /// without history.
    #[serde(default)]
    pub version: Option<u64>,
    /// The session that saved this version (see [`Provenance`]); shown by
    /// `get`, `None` in listings and search (they read the lean
    /// [`SkillEntry`]).
    #[serde(default)]
    pub session: Option<String>,
    /// The run of agent code that saved this version; shown by `get`, `None`
    /// in listings and search.
    #[serde(default)]
    pub run: Option<String>,
    /// `sha256:<hex>` of the source; shown by `get`, empty in listings and search.
    #[serde(default)]
    pub hash: String,
    /// Why the skill may no longer work (a tool it uses changed or is gone);
    /// `None` when fresh. Set by listings and search (see [`crate::drift`]).
    #[serde(default)]
    pub stale: Option<String>,
    /// The tools the skill uses, with their signatures when it was saved.
    #[serde(skip)]
    pub tools: BTreeMap<String, String>,
}

/// What `skills.get()` returns: the listing plus the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skill {
    #[serde(flatten)]
    pub info: SkillInfo,
    pub source: String,
}

/// Facts read from a skill's source without running it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSkill {
    /// The module docstring.
    pub docstring: String,
    /// The summary of `run()`'s docstring (without its `Args:`/`Returns:` sections).
    pub run_summary: String,
    pub parameters: Vec<ParamInfo>,
    pub is_async: bool,
    /// The tools the source names (`tools.<name>`, `tools.call("<name>")`):
    /// its static dependencies.
    pub tools: BTreeSet<String>,
}

/// `sha256:<hex>` of a skill's source: the hash provenance shows.
pub fn source_hash(source: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(source.as_bytes());
    format!("sha256:{}", hex(&digest))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

/// A tool's signature as drift compares it: each callable with its
/// parameters, `name(city: str, units?: str)`, joined by `; `. `None` while
/// the tool is unavailable (its callables unknown).
pub fn tool_signature(tool: &ToolInfo) -> Option<String> {
    if tool.unavailable.is_some() {
        return None;
    }
    Some(
        tool.callables
            .iter()
            .map(|c| {
                let params = c
                    .parameters
                    .iter()
                    .map(|p| {
                        let optional = if p.required { "" } else { "?" };
                        format!("{}{optional}: {}", p.name, p.ty)
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{}({params})", c.name)
            })
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// Collects the tool names a skill's source uses.
#[derive(Default)]
struct ToolRefs(BTreeSet<String>);

/// Methods of the `tools` namespace itself, not tools.
const TOOLS_METHODS: &[&str] = &["list", "search", "call"];

impl<'a> Visitor<'a> for ToolRefs {
    fn visit_expr(&mut self, expr: &'a Expr) {
        match expr {
            Expr::Attribute(a) => {
                if let Expr::Name(n) = a.value.as_ref()
                    && n.id.as_str() == "tools"
                    && !TOOLS_METHODS.contains(&a.attr.as_str())
                    && !a.attr.as_str().starts_with('_')
                {
                    self.0.insert(a.attr.as_str().to_owned());
                }
            }
            Expr::Call(c) => {
                // `tools.call("nmap.scan", ...)`: the literal names the tool.
                if let Expr::Attribute(a) = c.func.as_ref()
                    && let Expr::Name(n) = a.value.as_ref()
                    && n.id.as_str() == "tools"
                    && a.attr.as_str() == "call"
                    && let Some(Expr::StringLiteral(name)) = c.arguments.args.first()
                {
                    let name = name.value.to_str();
                    let tool = name.split('.').next().unwrap_or(name);
                    if !tool.is_empty() {
                        self.0.insert(tool.to_owned());
                    }
                }
            }
            _ => {}
        }
        walk_expr(self, expr);
    }
}

/// Parses skill source: it must be valid Python with a top-level `run()`.
/// The error message says what is wrong and where (line and column).
pub fn parse_skill(source: &str) -> Result<ParsedSkill, String> {
    let parsed = ruff_python_parser::parse_module(source).map_err(|e| {
        let (line, column) = line_column(source, e.location.start().to_usize());
        format!("syntax error at line {line}, column {column}: {}", e.error)
    })?;
    let body = &parsed.syntax().body;
    let docstring = docstring(body).unwrap_or_default();
    let run = body
        .iter()
        .rev()
        .find_map(|stmt| match stmt {
            Stmt::FunctionDef(f) if f.name.as_str() == "run" => Some(f),
            _ => None,
        })
        .ok_or("it defines no top-level `run()` function")?;
    let run_doc = docstring_of_fn(&run.body);
    let arg_docs = parse_arg_docs(&run_doc);
    let run_summary = doc_summary(&run_doc);
    let text = |node: &dyn Ranged| source[node.range()].to_owned();
    let mut parameters = Vec::new();
    let params = &run.parameters;
    for p in params
        .posonlyargs
        .iter()
        .chain(&params.args)
        .chain(&params.kwonlyargs)
    {
        let name = p.parameter.name.as_str().to_owned();
        parameters.push(ParamInfo {
            ty: p
                .parameter
                .annotation
                .as_deref()
                .map_or_else(|| "any".to_owned(), |a| text(a)),
            required: p.default.is_none(),
            default: p.default.as_deref().map(|d| literal_value(d, &text(d))),
            description: arg_docs.get(&name).cloned().unwrap_or_default(),
            name,
        });
    }
    let mut refs = ToolRefs::default();
    refs.visit_body(body);
    Ok(ParsedSkill {
        docstring,
        run_summary,
        parameters,
        is_async: run.is_async,
        tools: refs.0,
    })
}

fn docstring(body: &[Stmt]) -> Option<String> {
    match body.first()? {
        Stmt::Expr(e) => match e.value.as_ref() {
            Expr::StringLiteral(s) => Some(clean_docstring(s.value.to_str())),
            _ => None,
        },
        _ => None,
    }
}

/// A docstring up to its first section header (`Args:`, `Returns:`, …).
fn doc_summary(doc: &str) -> String {
    const SECTIONS: &[&str] = &[
        "args:",
        "arguments:",
        "parameters:",
        "params:",
        "returns:",
        "raises:",
        "yields:",
        "example:",
        "examples:",
    ];
    doc.lines()
        .take_while(|line| !SECTIONS.contains(&line.trim().to_ascii_lowercase().as_str()))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

fn docstring_of_fn(body: &[Stmt]) -> String {
    docstring(body).unwrap_or_default()
}

/// Strips the common indentation of a docstring like `inspect.cleandoc`.
fn clean_docstring(doc: &str) -> String {
    let mut lines = doc.lines();
    let first = lines.next().unwrap_or_default().trim().to_owned();
    let rest: Vec<&str> = lines.collect();
    let indent = rest
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = vec![first];
    out.extend(
        rest.iter()
            .map(|l| l.get(indent..).unwrap_or("").trim_end().to_owned()),
    );
    out.join("\n").trim().to_owned()
}

/// Reads `name: description` lines of a Google-style `Args:` section.
fn parse_arg_docs(doc: &str) -> HashMap<String, String> {
    let mut docs = HashMap::new();
    let mut in_args = false;
    for line in doc.lines() {
        let trimmed = line.trim();
        if matches!(trimmed, "Args:" | "Arguments:" | "Parameters:") {
            in_args = true;
            continue;
        }
        if in_args {
            if trimmed.is_empty() || !line.starts_with(char::is_whitespace) {
                in_args = !trimmed.is_empty() && line.starts_with(char::is_whitespace);
                continue;
            }
            if let Some((name, text)) = trimmed.split_once(':') {
                let name = name.split_whitespace().next().unwrap_or_default();
                if !name.is_empty() {
                    docs.insert(name.to_owned(), text.trim().to_owned());
                }
            }
        }
    }
    docs
}

fn literal_value(expr: &Expr, source: &str) -> Value {
    match expr {
        Expr::StringLiteral(s) => Value::String(s.value.to_str().to_owned()),
        Expr::BooleanLiteral(b) => Value::Bool(b.value),
        Expr::NoneLiteral(_) => Value::Null,
        Expr::NumberLiteral(_) => serde_json::from_str(&source.replace('_', ""))
            .unwrap_or_else(|_| Value::String(source.to_owned())),
        _ => Value::String(source.to_owned()),
    }
}

fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// The skills of a library: validated on the way in, parsed once per source.
#[derive(Debug)]
pub struct SkillLibrary {
    storage: Arc<dyn Storage>,
    /// Parsed metadata by source hash, so listing 1,000 skills parses only new ones.
    parsed: Mutex<HashMap<u64, Arc<ParsedSkill>>>,
    /// Who saves versions: the session id provenance records.
    session: Mutex<String>,
    /// The run of agent code in progress, if any: provenance's `run`.
    run: Mutex<Option<String>>,
}

/// Where a version comes from, besides its source: see [`SkillLibrary::create_version`].
#[derive(Debug, Clone, Default)]
pub struct VersionOrigin {
    /// The tools the source uses, each with its signature now.
    pub tools: BTreeMap<String, String>,
    /// The version this one restores.
    pub rollback_of: Option<u64>,
}

impl SkillLibrary {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            storage,
            parsed: Mutex::default(),
            session: Mutex::new(default_session_id()),
            run: Mutex::default(),
        }
    }

    /// Sets the session id later versions record (an agent's name, say).
    pub fn set_session(&self, id: &str) {
        if let Ok(mut session) = self.session.lock() {
            id.clone_into(&mut session);
        }
    }

    /// The session id versions record.
    pub fn session(&self) -> String {
        self.session.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Marks the run of agent code in progress (`None` once it ended).
    pub fn set_run(&self, run: Option<String>) {
        if let Ok(mut current) = self.run.lock() {
            *current = run;
        }
    }

    /// The tools `source` uses (see [`ParsedSkill::tools`]).
    pub fn tools_of(&self, name: &str, source: &str) -> Result<BTreeSet<String>> {
        Ok(self.parse(name, source)?.tools.clone())
    }

    /// A skill's kept versions, newest first (the current one included);
    /// also after a delete, until [`Self::purge`].
    pub async fn history(&self, name: &str) -> Result<Vec<SkillVersion>> {
        validate_skill_name(name)?;
        let mut versions = self.storage.skill_history(name).await?;
        for v in &mut versions {
            if v.provenance.hash.is_empty() {
                v.provenance.hash = source_hash(&v.source);
            }
        }
        Ok(versions)
    }

    /// Version `version` of a skill, as `get` shows a skill.
    pub async fn get_version(&self, name: &str, version: u64) -> Result<Skill> {
        let kept = self.history(name).await?;
        let found = kept
            .into_iter()
            .find(|v| v.provenance.version == version)
            .ok_or_else(|| SkillError::NoVersion {
                name: name.to_owned(),
                version,
            })?;
        let record = SkillRecord {
            name: name.to_owned(),
            source: found.source,
            description: found.description,
            created_at: found.created_at,
            updated_at: found.created_at,
            provenance: Some(found.provenance),
        };
        Ok(Skill {
            info: self.info(&record)?,
            source: record.source,
        })
    }

    /// Forgets a skill's history and recorded tests.
    pub async fn purge(&self, name: &str) -> Result<bool> {
        validate_skill_name(name)?;
        Ok(self.storage.purge_skill(name).await?)
    }

    /// Saves a new version (see [`Storage::commit_skill`]) with this
    /// library's session and run as provenance.
    pub async fn create_version(
        &self,
        name: &str,
        source: &str,
        description: &str,
        origin: VersionOrigin,
    ) -> Result<Skill> {
        validate_skill_name(name)?;
        self.parse(name, source)?;
        let now = jiff::Timestamp::now();
        let record = SkillRecord {
            name: name.to_owned(),
            source: source.to_owned(),
            description: description.trim().to_owned(),
            created_at: now,
            updated_at: now,
            provenance: None,
        };
        let provenance = Provenance {
            version: 0,
            session: self.session(),
            run: self.run.lock().ok().and_then(|r| r.clone()),
            hash: source_hash(source),
            tools: origin.tools,
            rollback_of: origin.rollback_of,
        };
        let saved = self
            .storage
            .commit_skill(&record, &provenance, MAX_SKILL_HISTORY)
            .await?;
        Ok(Skill {
            info: self.info(&saved)?,
            source: saved.source,
        })
    }

    /// Every skill, sorted by name. Skills whose source no longer parses are
    /// left out with a warning rather than hiding every other skill.
    pub async fn list(&self) -> Result<Vec<SkillInfo>> {
        Ok(self
            .list_parsed()
            .await?
            .into_iter()
            .map(|(info, _)| info)
            .collect())
    }

    /// Every skill with what search ranks it by (see [`skill_doc`]): the
    /// listing's text, plus the source's docstrings as a second signal.
    pub async fn list_with_docs(&self) -> Result<(Vec<SkillInfo>, Vec<SearchDoc>)> {
        Ok(self
            .list_parsed()
            .await?
            .into_iter()
            .map(|(info, parsed)| {
                let doc = skill_doc(&info, &parsed);
                (info, doc)
            })
            .unzip())
    }

    /// The listing reads the lean [`SkillEntry`]: the version and the tools
    /// drift needs, not the rest of the provenance (`session`, `run` and
    /// `hash` are shown by `get` and the history).
    async fn list_parsed(&self) -> Result<Vec<(SkillInfo, Arc<ParsedSkill>)>> {
        let entries = self.storage.list_skill_entries().await?;
        Ok(entries
            .into_iter()
            .filter_map(|e| match self.entry_info(e) {
                Ok(pair) => Some(pair),
                Err(e) => {
                    tracing::warn!("{e}");
                    None
                }
            })
            .collect())
    }

    pub async fn get(&self, name: &str) -> Result<Skill> {
        validate_skill_name(name)?;
        let record = self
            .storage
            .get_skill(name)
            .await?
            .ok_or_else(|| SkillError::NotFound {
                name: name.to_owned(),
            })?;
        let mut info = self.info(&record)?;
        if info.hash.is_empty() {
            info.hash = source_hash(&record.source);
        }
        Ok(Skill {
            info,
            source: record.source,
        })
    }

    /// Validates and saves a skill (replacing one of the same name) as a new
    /// version, without tool signatures (see [`crate::Host::create_skill`]).
    /// Nothing is written unless the name is allowed and the source parses
    /// with a `run()`.
    pub async fn create(&self, name: &str, source: &str, description: &str) -> Result<Skill> {
        self.create_version(name, source, description, VersionOrigin::default())
            .await
    }

    /// Saves a skill without keeping a version: [`Storage::put_skill`] as it
    /// was before history (for moving libraries and for measuring).
    pub async fn put_unversioned(
        &self,
        name: &str,
        source: &str,
        description: &str,
    ) -> Result<Skill> {
        validate_skill_name(name)?;
        self.parse(name, source)?;
        let now = jiff::Timestamp::now();
        let created_at = self
            .storage
            .get_skill(name)
            .await?
            .map_or(now, |old| old.created_at);
        let record = SkillRecord {
            name: name.to_owned(),
            source: source.to_owned(),
            description: description.trim().to_owned(),
            created_at,
            updated_at: now,
            provenance: None,
        };
        self.storage.put_skill(&record).await?;
        Ok(Skill {
            info: self.info(&record)?,
            source: record.source,
        })
    }

    pub async fn delete(&self, name: &str) -> Result<bool> {
        validate_skill_name(name)?;
        Ok(self.storage.delete_skill(name).await?)
    }

    /// A listing's view of a skill, from its lean entry.
    fn entry_info(&self, entry: SkillEntry) -> Result<(SkillInfo, Arc<ParsedSkill>), SkillError> {
        let parsed = self.parse(&entry.name, &entry.source)?;
        let description = if entry.description.is_empty() {
            parsed.docstring.clone()
        } else {
            entry.description
        };
        let info = SkillInfo {
            name: entry.name,
            description,
            parameters: parsed.parameters.clone(),
            is_async: parsed.is_async,
            created_at: entry.created_at,
            updated_at: entry.updated_at,
            version: entry.version,
            session: None,
            run: None,
            hash: String::new(),
            stale: None,
            tools: entry.tools,
        };
        Ok((info, parsed))
    }

    fn info(&self, record: &SkillRecord) -> Result<SkillInfo, SkillError> {
        self.parsed_info(record).map(|(info, _)| info)
    }

    fn parsed_info(
        &self,
        record: &SkillRecord,
    ) -> Result<(SkillInfo, Arc<ParsedSkill>), SkillError> {
        let parsed = self.parse(&record.name, &record.source)?;
        let description = if record.description.is_empty() {
            parsed.docstring.clone()
        } else {
            record.description.clone()
        };
        let info = SkillInfo {
            name: record.name.clone(),
            description,
            parameters: parsed.parameters.clone(),
            is_async: parsed.is_async,
            created_at: record.created_at,
            updated_at: record.updated_at,
            version: record.provenance.as_ref().map(|p| p.version),
            session: record.provenance.as_ref().map(|p| p.session.clone()),
            run: record.provenance.as_ref().and_then(|p| p.run.clone()),
            // A skill saved without history gets its hash in `get`, not in
            // every listing (hashing 1,000 sources per listing is not free).
            hash: record
                .provenance
                .as_ref()
                .map(|p| p.hash.clone())
                .unwrap_or_default(),
            stale: None,
            tools: record
                .provenance
                .as_ref()
                .map(|p| p.tools.clone())
                .unwrap_or_default(),
        };
        Ok((info, parsed))
    }

    fn parse(&self, name: &str, source: &str) -> Result<Arc<ParsedSkill>, SkillError> {
        let mut hasher = DefaultHasher::new();
        source.hash(&mut hasher);
        let key = hasher.finish();
        if let Some(hit) = self.parsed.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(hit);
        }
        let parsed = Arc::new(parse_skill(source).map_err(|message| SkillError::Invalid {
            name: name.to_owned(),
            message,
        })?);
        if let Ok(mut cache) = self.parsed.lock() {
            cache.insert(key, Arc::clone(&parsed));
        }
        Ok(parsed)
    }
}

/// A session id for sessions the application did not name: unique enough to
/// tell two sessions apart in a history (`session-<pid>-<start time>`).
pub fn default_session_id() -> String {
    format!(
        "session-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_millisecond()
    )
}

/// The searchable text of a skill: its description and parameters, then the
/// source's docstrings where they say more (the module docstring when an
/// explicit description replaced it, and the summary of `run()`'s).
pub fn skill_doc(skill: &SkillInfo, parsed: &ParsedSkill) -> SearchDoc {
    let mut text = vec![skill.description.clone()];
    text.extend(
        skill
            .parameters
            .iter()
            .map(|p| format!("{} {}", p.name, p.description)),
    );
    for doc in [&parsed.docstring, &parsed.run_summary] {
        if !doc.is_empty() && !text.contains(doc) {
            text.push(doc.clone());
        }
    }
    SearchDoc {
        name: skill.name.clone(),
        text: text.join("\n"),
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    #[test]
    fn search_text_adds_the_docstrings_an_explicit_description_replaced() -> Result<(), String> {
        let source = "\"\"\"Thumbnails for a gallery.\"\"\"\n\ndef run(folder: str):\n    \"\"\"Resize every picture in `folder`.\n\n    Args:\n        folder: where the pictures are\n    \"\"\"\n";
        let parsed = parse_skill(source)?;
        let info = SkillInfo {
            name: "thumbs".into(),
            description: "Image helper".into(),
            parameters: parsed.parameters.clone(),
            is_async: false,
            created_at: jiff::Timestamp::UNIX_EPOCH,
            updated_at: jiff::Timestamp::UNIX_EPOCH,
            version: None,
            session: None,
            run: None,
            hash: String::new(),
            stale: None,
            tools: BTreeMap::new(),
        };
        assert_eq!(
            skill_doc(&info, &parsed).text,
            "Image helper\nfolder where the pictures are\nThumbnails for a gallery.\nResize every picture in `folder`."
        );
        let described_by_docstring = SkillInfo {
            description: parsed.docstring.clone(),
            ..info
        };
        assert_eq!(
            skill_doc(&described_by_docstring, &parsed)
                .text
                .matches("Thumbnails")
                .count(),
            1,
            "no text twice"
        );
        Ok(())
    }

    #[test]
    fn reads_docstring_and_parameters_without_running() -> Result<(), String> {
        let source = r#""""Fetch a URL and summarize its content."""
import os
os.system("touch /tmp/never")  # parsing must not run this

async def run(url: str, max_length: int = 500, *, deep=False, tags: list[str] | None = None) -> dict:
    """Summarize.

    Args:
        url: the page to fetch
        max_length: longest summary
    """
    return {}
"#;
        let parsed = parse_skill(source)?;
        assert_eq!(parsed.docstring, "Fetch a URL and summarize its content.");
        assert_eq!(parsed.run_summary, "Summarize.", "without the Args section");
        assert!(parsed.is_async);
        let summary: Vec<_> = parsed
            .parameters
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.ty.as_str(),
                    p.required,
                    p.default.clone(),
                    p.description.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("url", "str", true, None, "the page to fetch"),
                (
                    "max_length",
                    "int",
                    false,
                    Some(json!(500)),
                    "longest summary"
                ),
                ("deep", "any", false, Some(json!(false)), ""),
                ("tags", "list[str] | None", false, Some(json!(null)), ""),
            ]
        );
        Ok(())
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse_skill("def run(:\n    pass\n").unwrap_err();
        assert!(err.starts_with("syntax error at line 1, column 9"), "{err}");
        let err = parse_skill("x = 1\n\ndef run(:\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn run_is_required_at_top_level() {
        let err = parse_skill("def helper():\n    def run(): pass\n").unwrap_err();
        assert_eq!(err, "it defines no top-level `run()` function");
    }

    #[test]
    fn python_312_syntax_parses() -> Result<(), String> {
        parse_skill(
            "def run(name: str):\n    return f\"{name + f'{name!r}'}\"\ntype Alias = int\n",
        )?;
        Ok(())
    }
}
