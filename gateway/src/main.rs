//! `tgw`: the Township Gateway daemon and command-line tool.

/// jemalloc returns freed memory to the system over time, where glibc's
/// per-thread arenas held on to it (BENCHMARKS.md, "Footprint"); its
/// settings are compiled in from `.cargo/config.toml`.
#[cfg(all(target_os = "linux", not(target_env = "msvc")))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    daemon_allocator();
    tgw::cmd::main()
}

/// The long-running commands purge freed pages on jemalloc's background
/// thread; one-shot commands (`tgw probe`, …) start without it.
fn daemon_allocator() {
    #[cfg(all(target_os = "linux", not(target_env = "msvc")))]
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "run" || a == "demo")
        && let Err(e) = tikv_jemalloc_ctl::background_thread::write(true)
    {
        eprintln!(
            "tgw: jemalloc's background thread could not start ({e}); freed memory is returned on allocation instead"
        );
    }
}
