//! `py-code-mode store push|pull|diff`: a library between a folder and Redis.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use py_code_mode::{Storage, StoreDiff, SyncReport, diff_stores, sync_stores};

use crate::config::{LibraryArgs, StoreArgs, StoreCommand};

/// Runs one `store` command; never starts a Python worker.
pub async fn run(library: &LibraryArgs, command: &StoreCommand) -> anyhow::Result<ExitCode> {
    let folder = library.file_storage()?;
    let redis = library.redis_storage().await?;
    let folder_name = format!("folder `{}`", folder.location());
    let redis_name = format!("Redis `{}`", redis.location());
    let mut out = String::new();
    let code = match command {
        StoreCommand::Push(args) => {
            let spinner =
                crate::progress::spinner(format!("copying the {folder_name} to {redis_name}"));
            let report = sync_stores(&folder, &redis, args.dry_run).await;
            spinner.finish_and_clear();
            let report = report?;
            render_sync(&mut out, args, &report, "push", &folder_name, &redis_name)?;
            ExitCode::SUCCESS
        }
        StoreCommand::Pull(args) => {
            let spinner =
                crate::progress::spinner(format!("copying {redis_name} to the {folder_name}"));
            let report = sync_stores(&redis, &folder, args.dry_run).await;
            spinner.finish_and_clear();
            let report = report?;
            render_sync(&mut out, args, &report, "pull", &redis_name, &folder_name)?;
            ExitCode::SUCCESS
        }
        StoreCommand::Diff(args) => {
            let diff = diff_stores(&folder, &redis).await?;
            render_diff(&mut out, args, &diff, &folder_name, &redis_name)?;
            if diff.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(code)
}

fn render_sync(
    out: &mut String,
    args: &StoreArgs,
    report: &SyncReport,
    verb: &str,
    from: &str,
    to: &str,
) -> anyhow::Result<()> {
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(report)?)?;
        return Ok(());
    }
    let would = if report.dry_run { "would " } else { "" };
    for item in &report.created {
        writeln!(out, "+ {item}")?;
    }
    for item in &report.updated {
        writeln!(out, "~ {item}")?;
    }
    writeln!(
        out,
        "{would}{verb} {} new, {} changed, {} unchanged: {from} -> {to}",
        report.created.len(),
        report.updated.len(),
        report.unchanged
    )?;
    Ok(())
}

fn render_diff(
    out: &mut String,
    args: &StoreArgs,
    diff: &StoreDiff,
    left: &str,
    right: &str,
) -> anyhow::Result<()> {
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(diff)?)?;
        return Ok(());
    }
    for item in &diff.only_in_source {
        writeln!(out, "< {item} (only in the folder)")?;
    }
    for item in &diff.only_in_target {
        writeln!(out, "> {item} (only in Redis)")?;
    }
    for item in &diff.different {
        writeln!(out, "~ {item} (differs)")?;
    }
    writeln!(
        out,
        "{} only in the folder, {} only in Redis, {} differ, {} same: {left} vs {right}",
        diff.only_in_source.len(),
        diff.only_in_target.len(),
        diff.different.len(),
        diff.same
    )?;
    Ok(())
}
