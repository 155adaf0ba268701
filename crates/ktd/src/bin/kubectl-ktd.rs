//! `kubectl-ktd`: the same program as `ktd`, named so that `kubectl ktd …` finds it as a
//! kubectl plugin.

fn main() -> std::process::ExitCode {
    ktd::main()
}
