//! Progress on stderr for one-shot commands, drawn only when a person is
//! watching (stderr is a terminal); otherwise nothing is printed, so logs and
//! pipes stay clean.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use py_code_mode::IndexProgress;

fn visible() -> bool {
    std::io::stderr().is_terminal()
}

fn styled(bar: ProgressBar, template: &str) -> ProgressBar {
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// A spinner with `message` until the returned bar is finished.
pub fn spinner(message: String) -> ProgressBar {
    if !visible() {
        return ProgressBar::hidden();
    }
    let bar = styled(
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
        "{spinner} {msg} {elapsed}",
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// A bar of documents embedded; `update` feeds it.
pub fn embedding_bar() -> ProgressBar {
    if !visible() {
        return ProgressBar::hidden();
    }
    styled(
        ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr()),
        "embedding {bar:30} {pos}/{len} docs {per_sec} eta {eta}",
    )
}

/// Moves `bar` to where an index run stands.
pub fn update(bar: &ProgressBar, progress: IndexProgress) {
    bar.set_length(progress.to_embed as u64);
    bar.set_position(progress.embedded as u64);
}
