//! `py-code-mode skills history|rollback|purge|test`: a skill's versions and recorded tests.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Subcommand;
use py_code_mode::Session;

#[derive(Debug, Subcommand)]
pub enum VersionsCommand {
    /// A skill's kept versions, newest first, as JSON
    History { name: String },
    /// Make a kept version current again (saved as a new version)
    Rollback { name: String, version: u64 },
    /// Forget a skill's history and recorded tests
    Purge { name: String },
    /// Replay recorded test cases (every skill's when no name is given);
    /// exit code 1 when a case fails
    Test {
        names: Vec<String>,
        /// Print the reports as JSON
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(session: &Session, command: VersionsCommand) -> anyhow::Result<ExitCode> {
    match command {
        VersionsCommand::History { name } => {
            crate::print_json(&session.skill_history(&name).await?)
        }
        VersionsCommand::Rollback { name, version } => {
            crate::print_json(&session.rollback_skill(&name, version).await?)
        }
        VersionsCommand::Purge { name } => crate::print_json(&session.purge_skill(&name).await?),
        VersionsCommand::Test { names, json } => test(session, names, json).await,
    }
}

async fn test(session: &Session, names: Vec<String>, json: bool) -> anyhow::Result<ExitCode> {
    let names = if names.is_empty() {
        let mut with_cases = Vec::new();
        for skill in session.list_skills().await? {
            if !session.host().cases(&skill.name).await?.cases.is_empty() {
                with_cases.push(skill.name);
            }
        }
        with_cases
    } else {
        names
    };
    let mut all = Vec::new();
    for name in &names {
        let reports = session.test_skill(name).await?;
        all.push(serde_json::json!({"skill": name, "cases": reports}));
        if !json {
            let mut out = std::io::stdout().lock();
            if reports.is_empty() {
                writeln!(out, "skill `{name}`: no recorded cases")?;
            }
            for report in &reports {
                let verdict = if report.ok { "ok  " } else { "FAIL" };
                writeln!(out, "{verdict} {name}/{}", report.case)?;
                for line in report.diff.lines() {
                    writeln!(out, "     {line}")?;
                }
            }
        }
    }
    let failed = all
        .iter()
        .flat_map(|s| s["cases"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["ok"] != serde_json::Value::Bool(true))
        .count();
    if json {
        crate::print_json(&all)?;
    } else {
        let total: usize = all
            .iter()
            .map(|s| s["cases"].as_array().map_or(0, Vec::len))
            .sum();
        writeln!(
            std::io::stdout().lock(),
            "{} passed, {failed} failed",
            total - failed
        )?;
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
