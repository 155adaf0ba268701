//! `kubectl-ktd`: the same program as `ktd`, named so that `kubectl ktd …` finds it as a
//! kubectl plugin.

/// jemalloc returns freed memory to the system; glibc's malloc keeps a large poll's peak
/// (docs/adr/0004-jemalloc-in-the-binaries.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    ktd::main()
}
