//! The one prompt: how to work in code mode with this library.

use rmcp::ErrorData;
use rmcp::model::{
    GetPromptResult, JsonObject, ListPromptsResult, Prompt, PromptArgument, PromptMessage, Role,
};

/// The prompt's name.
pub const CODE_MODE: &str = "code_mode";

/// What the prompt teaches, before the task.
const TEACHING: &str = "\
You work in *code mode*: instead of calling many tools one by one, you write Python and run it \
with the `run_code` tool. Variables persist between calls like notebook cells, top-level `await` \
works, and the value of the last expression is returned with stdout and stderr.

Three namespaces are bound in every run:
- `tools`: `tools.search(\"what you need\")` finds tools, `tools.list()` lists them, and \
`tools.<name>(arg=...)` calls one (namespaced tools as `tools.<group>.<name>(...)`). \
Compose several calls in one run rather than one call per turn.
- `skills`: reusable recipes. `skills.search(\"...\")`, `skills.<name>(arg=...)`, \
`skills.get(name).source`; save what worked with \
`skills.create(name=..., source='def run(...): ...', description=...)`.
- `artifacts`: persistent data. `artifacts.save(name, data, description=...)`, \
`artifacts.load(name)`, `artifacts.list()`.

How to work:
1. Search before you build: prefer an existing skill, then tools.
2. Do the work in as few runs as you can; print only what you need to read.
3. When a sequence worked and may be needed again, save it as a skill with a clear description.
4. Keep results that matter (reports, data) as artifacts.
Skills and artifacts are also readable as MCP resources (`skill://<name>`, `artifact://<name>`).";

/// The prompts this server offers.
pub fn list() -> ListPromptsResult {
    ListPromptsResult::with_all_items(vec![Prompt::new(
        CODE_MODE,
        Some("How to solve a task in code mode: Python with `tools`, `skills` and `artifacts`"),
        Some(vec![
            PromptArgument::new("task")
                .with_description("The task to solve (optional)")
                .with_required(false),
        ]),
    )])
}

/// `prompts/get`.
pub fn get(name: &str, arguments: Option<&JsonObject>) -> Result<GetPromptResult, ErrorData> {
    if name != CODE_MODE {
        return Err(ErrorData::invalid_params(
            format!("no prompt `{name}`\nhint: the prompt is `{CODE_MODE}`"),
            None,
        ));
    }
    let task = arguments
        .and_then(|args| args.get("task"))
        .and_then(|task| task.as_str())
        .filter(|task| !task.trim().is_empty());
    let text = match task {
        Some(task) => format!("{TEACHING}\n\nYour task: {task}"),
        None => TEACHING.to_owned(),
    };
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description("Code mode with py-code-mode"),
    )
}
