//! The sandbox launcher alone: what `py-code-mode` starts to apply the
//! sandbox and exec a worker (see `py_code_mode::sandbox`). It holds only
//! the launcher, so it loads in a fraction of the time the whole CLI takes
//! at every worker start. Not a command for people.

use std::process::ExitCode;

fn main() -> ExitCode {
    // As the launcher this never returns.
    py_code_mode::sandbox::launcher_main();
    #[expect(clippy::print_stderr, reason = "the one thing to say to a person")]
    {
        eprintln!(
            "error: `py-code-mode-sandbox` is started by `py-code-mode` to launch sandboxed workers; run `py-code-mode` instead"
        );
    }
    ExitCode::from(2)
}
