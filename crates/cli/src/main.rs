//! The `callseal` binary; everything lives in the library so tests can reach it.

fn main() -> std::process::ExitCode {
    callseal_cli::main_entry()
}
