use std::process::ExitCode;

fn main() -> ExitCode {
    match py_code_mode_cli::run(std::env::args_os()) {
        Ok(code) => code,
        Err(error) => {
            #[expect(clippy::print_stderr, reason = "the last word of a failed command")]
            {
                eprintln!("error: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}
