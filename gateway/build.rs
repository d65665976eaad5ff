//! Link settings for the `tgw` binary.

fn main() {
    // Packed relative relocations (DT_RELR, glibc ≥ 2.36, binutils ≥ 2.38):
    // the ~32,000 relative relocations of a position-independent `tgw` take
    // a few KiB instead of 750 KiB of `.rela.dyn` that the dynamic loader
    // reads at every start (BENCHMARKS.md, "Probe start-up").
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.ends_with("-linux-gnu") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
