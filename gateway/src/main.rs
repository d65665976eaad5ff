//! `tgw`: the Township Gateway daemon and command-line tool.

fn main() -> std::process::ExitCode {
    tgw::cmd::main()
}
