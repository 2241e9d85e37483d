fn main() -> std::process::ExitCode {
    py_code_mode_cli::main()
}
