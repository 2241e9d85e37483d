//! Subcommands a person uses to look at and change a library by hand:
//! `artifacts list|show|save|rm`, `skills show|add|rm`, `tools call`.
//! Tables and plain text by default, JSON with `--json`.
//!
//! `tools list|search` and `skills list|search` keep printing JSON (scripts
//! and docs rely on it); they live in [`crate::config::Listing`].

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use clap::{Subcommand, ValueEnum};
use py_code_mode::{ArtifactData, Session};
use serde_json::{Map, Value};

use crate::config::Listing;

/// `py-code-mode tools …`
#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    #[command(flatten)]
    Listing(Listing),
    /// Call a tool: `tools call NAME key=value...` (values that parse as JSON are JSON)
    Call {
        /// `name`, or `name.callable` for a recipe or an MCP server's tool
        name: String,
        /// Arguments as `key=value`
        args: Vec<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
}

/// `py-code-mode skills …`
#[derive(Debug, Subcommand)]
pub enum SkillsCommand {
    #[command(flatten)]
    Listing(Listing),
    /// A skill's description, parameters and source
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Add (or replace) a skill from a Python file with a `run()` function (`-` for stdin)
    Add {
        name: String,
        file: PathBuf,
        /// What the skill does (default: its docstring)
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a skill
    Rm { name: String },
    #[command(flatten)]
    Versions(crate::skills_cmd::VersionsCommand),
}

/// `py-code-mode artifacts …`
#[derive(Debug, Subcommand)]
pub enum ArtifactsCommand {
    /// Every artifact: name, type, size, updated, description
    List {
        #[arg(long)]
        json: bool,
    },
    /// An artifact's data (text and JSON as they are, bytes raw unless `--json`)
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Save a file (`-` for stdin) as an artifact
    Save {
        name: String,
        file: PathBuf,
        /// How to keep the data (default: `json` for a `.json` file, `text` if
        /// it is UTF-8, else `bytes`)
        #[arg(long = "type", value_enum)]
        kind: Option<Kind>,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove an artifact
    Rm { name: String },
}

/// The type an artifact is saved as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Text,
    Json,
    Bytes,
}

/// The most bytes read from a file or stdin for one item: the storage's own
/// bound on an artifact (a skill's is smaller and checked by the library).
const MAX_INPUT: u64 = py_code_mode::MAX_ARTIFACT_BYTES;

fn read_input(file: &Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_INPUT + 1)
            .read_to_end(&mut bytes)
            .context("cannot read stdin")?;
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(MAX_INPUT + 1).read_to_end(&mut bytes))
            .with_context(|| format!("cannot read `{}`", file.display()))?;
    }
    if bytes.len() as u64 > MAX_INPUT {
        bail!("`{}` is larger than {MAX_INPUT} bytes", file.display());
    }
    Ok(bytes)
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    crate::print_json(value).map(drop)
}

/// Left-aligned columns; the last column is not padded.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let bold = crate::doctor::colour();
    let line = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c
                } else {
                    format!("{c:<width$}", width = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let head = line(header.iter().map(|h| (*h).to_owned()).collect());
    let mut text = if bold {
        format!("\x1b[1m{head}\x1b[0m\n")
    } else {
        format!("{head}\n")
    };
    for row in rows {
        text.push_str(line(row.clone()).trim_end());
        text.push('\n');
    }
    text
}

/// `tools call NAME key=value...`
pub async fn tools(session: &Session, command: ToolsCommand) -> anyhow::Result<ExitCode> {
    let ToolsCommand::Call { name, args, json } = command else {
        bail!("not a `tools` subcommand of this module");
    };
    let mut map = Map::new();
    for arg in &args {
        let Some((key, value)) = arg.split_once('=') else {
            bail!("`{arg}` is not `key=value`\nhint: `py-code-mode tools call {name} key=value`");
        };
        // `3`, `true`, `[1, 2]` as JSON; anything else (`hello`, `10.0.0.1`) as text.
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
        map.insert(key.to_owned(), value);
    }
    let result = session.host().tools().call(&name, map).await?;
    match (&result, json) {
        (Value::String(text), false) => {
            let mut out = std::io::stdout().lock();
            write!(out, "{text}")?;
            if !text.ends_with('\n') {
                writeln!(out)?;
            }
        }
        _ => print_json(&result)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `skills show|add|rm`
pub async fn skills(session: &Session, command: SkillsCommand) -> anyhow::Result<ExitCode> {
    match command {
        SkillsCommand::Listing(_) | SkillsCommand::Versions(_) => {
            bail!("not a `skills` subcommand of this module")
        }
        SkillsCommand::Show { name, json } => {
            let skill = session.get_skill(&name).await?;
            if json {
                print_json(&skill)?;
            } else {
                let params: Vec<String> = skill
                    .info
                    .parameters
                    .iter()
                    .map(|p| {
                        let default = p
                            .default
                            .as_ref()
                            .map(|d| format!(" = {d}"))
                            .unwrap_or_default();
                        format!("{}: {}{default}", p.name, p.ty)
                    })
                    .collect();
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}({})", skill.info.name, params.join(", "))?;
                if !skill.info.description.is_empty() {
                    writeln!(out, "  {}", skill.info.description)?;
                }
                writeln!(out, "  updated {}\n", skill.info.updated_at)?;
                write!(out, "{}", skill.source)?;
                if !skill.source.ends_with('\n') {
                    writeln!(out)?;
                }
            }
        }
        SkillsCommand::Add {
            name,
            file,
            description,
            json,
        } => {
            let source = String::from_utf8(read_input(&file)?)
                .with_context(|| format!("`{}` is not UTF-8", file.display()))?;
            let skill = session.add_skill(&name, &source, &description).await?;
            if json {
                print_json(&skill.info)?;
            } else {
                writeln!(std::io::stdout(), "added skill `{}`", skill.info.name)?;
            }
        }
        SkillsCommand::Rm { name } => {
            if !session.remove_skill(&name).await? {
                bail!("no skill `{name}`\nhint: `py-code-mode skills list`");
            }
            writeln!(std::io::stdout(), "removed skill `{name}`")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `artifacts list|show|save|rm`
pub async fn artifacts(session: &Session, command: ArtifactsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ArtifactsCommand::List { json } => {
            let list = session.list_artifacts().await?;
            if json {
                print_json(&list)?;
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|a| {
                        vec![
                            a.name.clone(),
                            serde_json::to_value(a.kind)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_owned))
                                .unwrap_or_default(),
                            a.size.to_string(),
                            a.updated_at.strftime("%Y-%m-%d %H:%M").to_string(),
                            a.description.clone(),
                        ]
                    })
                    .collect();
                write!(
                    std::io::stdout(),
                    "{}",
                    table(&["NAME", "TYPE", "SIZE", "UPDATED", "DESCRIPTION"], &rows)
                )?;
            }
        }
        ArtifactsCommand::Show { name, json } => {
            let data = session.load_artifact(&name).await?;
            let mut out = std::io::stdout().lock();
            match (data, json) {
                (data, true) => print_json(&data)?,
                (ArtifactData::Text { value }, false) => {
                    write!(out, "{value}")?;
                    if !value.ends_with('\n') {
                        writeln!(out)?;
                    }
                }
                (ArtifactData::Json { value }, false) => print_json(&value)?,
                (ArtifactData::Bytes { base64 }, false) => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(base64)
                        .context("stored bytes are not base64")?;
                    if out.is_terminal() {
                        bail!(
                            "`{name}` holds {} bytes of binary data\nhint: redirect it to a file, or use `--json`",
                            bytes.len()
                        );
                    }
                    out.write_all(&bytes)?;
                }
            }
        }
        ArtifactsCommand::Save {
            name,
            file,
            kind,
            description,
            json,
        } => {
            let bytes = read_input(&file)?;
            let kind = kind.unwrap_or_else(|| guess_kind(&file, &bytes));
            let data = match kind {
                Kind::Json => ArtifactData::Json {
                    value: serde_json::from_slice(&bytes)
                        .with_context(|| format!("`{}` is not JSON", file.display()))?,
                },
                Kind::Text => ArtifactData::Text {
                    value: String::from_utf8(bytes)
                        .with_context(|| format!("`{}` is not UTF-8", file.display()))?,
                },
                Kind::Bytes => ArtifactData::Bytes {
                    base64: base64::engine::general_purpose::STANDARD.encode(bytes),
                },
            };
            let meta = session
                .save_artifact(&name, &data, &description, Map::new())
                .await?;
            if json {
                print_json(&meta)?;
            } else {
                writeln!(
                    std::io::stdout(),
                    "saved artifact `{}` ({} bytes)",
                    meta.name,
                    meta.size
                )?;
            }
        }
        ArtifactsCommand::Rm { name } => {
            if !session.delete_artifact(&name).await? {
                bail!("no artifact `{name}`\nhint: `py-code-mode artifacts list`");
            }
            writeln!(std::io::stdout(), "removed artifact `{name}`")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn guess_kind(file: &Path, bytes: &[u8]) -> Kind {
    let is_json = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json && serde_json::from_slice::<Value>(bytes).is_ok() {
        Kind::Json
    } else if std::str::from_utf8(bytes).is_ok() {
        Kind::Text
    } else {
        Kind::Bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_leave_the_last_unpadded() {
        let rows = vec![
            vec![
                "a.json".to_owned(),
                "json".to_owned(),
                "long text".to_owned(),
            ],
            vec!["notes".to_owned(), "text".to_owned(), String::new()],
        ];
        assert_eq!(
            table(&["NAME", "TYPE", "DESCRIPTION"], &rows),
            "NAME    TYPE  DESCRIPTION\na.json  json  long text\nnotes   text\n"
        );
    }
}
