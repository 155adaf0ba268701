//! `ktd`: see `ktd --help`.

fn main() -> std::process::ExitCode {
    ktd::main()
}
