//! One module per command group; `run` dispatches.

mod doctor;
mod keygen;

use std::path::PathBuf;

use crate::args::{Cli, Command, Global, OperatorCmd};
use crate::error::CliError;
use crate::secrets;

/// What every command may need from the global options.
pub(crate) struct Ctx {
    pub global: Global,
    /// Whether core dumps were enabled before this process turned them off.
    pub core_dumps_before: bool,
}

impl Ctx {
    pub fn token_file(&self) -> PathBuf {
        self.global.token_file.clone().unwrap_or_else(|| secrets::default_token_file(&self.global.data))
    }

    pub fn key_file(&self) -> PathBuf {
        self.global.key_file.clone().unwrap_or_else(|| secrets::default_key_file(&self.global.data))
    }
}

pub(crate) fn run(cli: Cli, core_dumps_before: bool) -> Result<(), CliError> {
    let ctx = Ctx { global: cli.global, core_dumps_before };
    match cli.command {
        Command::Operator(OperatorCmd::Keygen { output }) => keygen::run(&ctx, output),
        Command::Doctor => {
            let mut findings = Vec::new();
            doctor::check_file_modes(&ctx.global.data, &mut findings);
            doctor::check_core_dumps(ctx.core_dumps_before, &mut findings);
            doctor::check_clock(&mut findings);
            doctor::check_outbox(&ctx.global.data, &mut findings);
            doctor::conclude(&findings, ctx.global.json)
        }
        _ => Err(CliError::Component { component: "callseal", reason: "this command is not available in this build".into() }),
    }
}
