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

/// How long a step may take before [`while_slow`] shows a spinner.
const SLOW: Duration = Duration::from_millis(500);

/// Awaits `step`; a spinner with `message` appears if it takes longer than
/// [`SLOW`] (a session build that installs the library's dependencies), and
/// never for the quick case, so `run -c` at a terminal does not flicker.
pub async fn while_slow<T>(message: &str, step: impl Future<Output = T>) -> T {
    let mut step = std::pin::pin!(step);
    if let Ok(done) = tokio::time::timeout(SLOW, &mut step).await {
        return done;
    }
    let bar = spinner(message.to_owned());
    let done = step.await;
    bar.finish_and_clear();
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_step_gives_its_output_whether_quick_or_slow() {
        assert_eq!(while_slow("quick", async { 1 }).await, 1);
        let slow = async {
            tokio::time::sleep(SLOW + Duration::from_millis(100)).await;
            2
        };
        assert_eq!(while_slow("slow", slow).await, 2);
    }
}
