//! One module per command group; `run` dispatches. Everything the CLI can check by itself
//! (arguments, purposes, output paths, key and token files) is checked before the escrow is
//! contacted, so a mistake never costs an audit entry.

mod admin;
mod api;
mod doctor;
mod export;
mod keygen;
mod recordings;
mod remote;
mod serve;

use std::path::PathBuf;

use crate::args::{AuditCmd, Cli, Command, Global, OperatorCmd, RecordingsCmd, RetentionCmd};
use crate::error::CliError;
use crate::{retention, secrets, timefmt};

/// What every command may need from the global options.
pub(crate) struct Ctx {
    pub global: Global,
    /// Whether core dumps were enabled before this process turned them off.
    pub core_dumps_before: bool,
}

impl Ctx {
    pub fn token_file(&self) -> PathBuf {
        self.global
            .token_file
            .clone()
            .unwrap_or_else(|| secrets::default_token_file(&self.global.data))
    }

    pub fn key_file(&self) -> PathBuf {
        self.global
            .key_file
            .clone()
            .unwrap_or_else(|| secrets::default_key_file(&self.global.data))
    }
}

pub(crate) fn run(cli: Cli, core_dumps_before: bool) -> Result<(), CliError> {
    let ctx = Ctx {
        global: cli.global,
        core_dumps_before,
    };
    // One worker per core this process may run on (available_parallelism honours the CPU
    // affinity, e.g. `taskset`): more workers than cores only hand packets between threads.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| CliError::Component {
            component: "async runtime",
            reason: e.to_string(),
        })?;
    rt.block_on(dispatch(&ctx, cli.command))
}

async fn dispatch(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    match command {
        Command::Init(a) => remote::init(ctx, &a).await,
        Command::Serve(a) => serve::serve(ctx, &a, true).await,
        Command::Gateway(a) => serve::serve(ctx, &a, false).await,
        Command::Escrow(a) => remote::escrow(ctx, &a).await,
        Command::Doctor(a) => {
            // The folder `serve -c FILE` would use: the file's data_dir, unless --data was
            // changed from its default.
            let mut global = ctx.global.clone();
            if let Some(file) = &a.config
                && global.data == std::path::Path::new("callseal-data")
                && let Ok(c) = callseal_gateway::Config::from_file(file)
            {
                global.data = c.data_dir;
            }
            let ctx = &Ctx {
                global,
                core_dumps_before: ctx.core_dumps_before,
            };
            let mut findings = Vec::new();
            doctor::check_file_modes(&ctx.global.data, &mut findings);
            doctor::check_core_dumps(ctx.core_dumps_before, &mut findings);
            doctor::check_clock(&mut findings);
            doctor::check_outbox(&ctx.global.data, &mut findings);
            doctor::check_prompts(a.config.as_deref(), &mut findings);
            remote::doctor_checks(ctx, &mut findings).await;
            doctor::conclude(&findings, ctx.global.json)
        }
        Command::Operator(OperatorCmd::Keygen { output }) => keygen::run(ctx, output),
        Command::Operator(cmd) => {
            let e = remote::connect(ctx).await?;
            match cmd {
                OperatorCmd::Add {
                    name,
                    role,
                    public_key,
                } => admin::operator_add(ctx, &e, &name, role, public_key.as_deref()).await,
                OperatorCmd::List => admin::operator_list(ctx, &e).await,
                OperatorCmd::Disable { name } => admin::operator_disable(ctx, &e, &name).await,
                OperatorCmd::Acknowledge { yes } => admin::operator_acknowledge(ctx, &e, yes).await,
                OperatorCmd::Keygen { .. } => Ok(()),
            }
        }
        Command::Recordings(cmd) => recordings_cmd(ctx, cmd).await,
        Command::Retention(RetentionCmd::Show) => {
            admin::retention_show(ctx, &remote::connect(ctx).await?).await
        }
        Command::Retention(RetentionCmd::Set { days, line }) => {
            let days = retention::parse_days(&days)?;
            let days = u32::try_from(days).map_err(|_| CliError::RetentionOutOfRange {
                days: days.into(),
                min: retention::MIN_DAYS,
                max: retention::MAX_DAYS,
            })?;
            admin::retention_set(ctx, &remote::connect(ctx).await?, days, line.as_deref()).await
        }
        Command::Epochs => admin::epochs(ctx, &remote::connect(ctx).await?).await,
        Command::Audit(AuditCmd::List { since }) => {
            let since_ms = since
                .as_deref()
                .map(|s| timefmt::parse_utc("--since", s))
                .transpose()?
                .map(|s| s * 1000);
            admin::audit_list(ctx, &remote::connect(ctx).await?, since_ms).await
        }
        Command::Audit(AuditCmd::Verify) => {
            admin::audit_verify(ctx, &remote::connect(ctx).await?).await
        }
        Command::Receipts { id } => {
            admin::receipts(ctx, &remote::connect(ctx).await?, id.as_deref()).await
        }
    }
}

async fn recordings_cmd(ctx: &Ctx, cmd: RecordingsCmd) -> Result<(), CliError> {
    match cmd {
        RecordingsCmd::List(f) => {
            let f = recordings::filter(&f)?;
            recordings::list(ctx, &remote::connect(ctx).await?, &f).await
        }
        RecordingsCmd::Show { id } => {
            let id = recordings::check_id(&id)?;
            recordings::show(ctx, &remote::connect(ctx).await?, &id).await
        }
        RecordingsCmd::Export {
            id,
            purpose,
            output,
            leg,
        } => {
            let purpose = recordings::check_purpose(purpose.as_deref(), CliError::PurposeMissing)?;
            let id = recordings::check_id(&id)?;
            let target = export::Target::file(&output)?;
            export::run(ctx, &id, &purpose, leg, target).await
        }
        RecordingsCmd::Play {
            id,
            purpose,
            leg,
            player,
        } => {
            let purpose = recordings::check_purpose(purpose.as_deref(), CliError::PurposeMissing)?;
            let id = recordings::check_id(&id)?;
            export::run(ctx, &id, &purpose, leg, export::Target::player(&player)).await
        }
        RecordingsCmd::Erase { id, reason } => {
            let reason = recordings::check_purpose(reason.as_deref(), CliError::ReasonMissing)?;
            let id = recordings::check_id(&id)?;
            let e = remote::connect(ctx).await?;
            api::Escrow::erase(&e, &id, &reason).await?;
            done(
                ctx,
                "erased",
                &id,
                &format!(
                    "Erased {id}: its key is shredded; the recording can never be opened again."
                ),
            )
        }
        RecordingsCmd::Hold { id, reason } => {
            let reason = reason.map_or_else(|| "legal hold".to_owned(), |r| r.trim().to_owned());
            let reason = recordings::check_purpose(Some(&reason), CliError::ReasonMissing)?;
            let id = recordings::check_id(&id)?;
            let e = remote::connect(ctx).await?;
            api::Escrow::hold(&e, &id, &reason).await?;
            done(
                ctx,
                "held",
                &id,
                &format!("{id} is under legal hold: it survives its retention until released."),
            )
        }
        RecordingsCmd::Release { id } => {
            let id = recordings::check_id(&id)?;
            let e = remote::connect(ctx).await?;
            api::Escrow::release_hold(&e, &id).await?;
            done(
                ctx,
                "released",
                &id,
                &format!(
                    "Released the hold on {id}; if its retention has ended, it is shredded now."
                ),
            )
        }
    }
}

fn done(ctx: &Ctx, what: &str, id: &str, human: &str) -> Result<(), CliError> {
    if ctx.global.json {
        crate::output::print_json(&serde_json::json!({ what: id }))
    } else {
        println!("{human}");
        Ok(())
    }
}
