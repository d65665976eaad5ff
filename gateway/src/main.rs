//! `tgw`: the Township Gateway daemon and command-line tool.

/// jemalloc returns freed memory to the system over time, where glibc's
/// per-thread arenas held on to it (BENCHMARKS.md, "Footprint").
#[cfg(all(target_os = "linux", not(target_env = "msvc")))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    tgw::cmd::main()
}
