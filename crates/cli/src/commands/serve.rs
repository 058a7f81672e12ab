//! `callseal serve` (gateway and escrow in one process) and `callseal gateway` (gateway only,
//! against a remote escrow). Configuration: a TOML file (deploy/callseal.example.toml), then
//! the command line. With nothing given, a fresh machine gets `./callseal-data`, SIP on
//! 127.0.0.1:5060, the echo demo instead of a PBX, and 30 days of retention.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use callseal_gateway::config::EscrowMode;
use callseal_gateway::escrow::{EscrowApi, Link};
use callseal_gateway::{Config, ServeOptions};

use super::Ctx;
use crate::args::ServeArgs;
use crate::error::CliError;

fn gw_err(e: callseal_gateway::GatewayError) -> CliError {
    use callseal_gateway::GatewayError as G;
    match e {
        G::ConfigRead { .. }
        | G::ConfigParse { .. }
        | G::ConfigInvalid { .. }
        | G::Prompt { .. } => CliError::Config {
            message: e.to_string(),
        },
        G::Bind { what, addr, source } => CliError::Listen {
            what: format!("cannot listen for {what} on {addr}"),
            reason: source.to_string(),
        },
        other => CliError::Component {
            component: "gateway",
            reason: other.to_string(),
        },
    }
}

fn esc_err(e: impl std::fmt::Display) -> CliError {
    CliError::Component {
        component: "escrow",
        reason: e.to_string(),
    }
}

/// Resolves the configuration: file, then `--data`, `--pbx`, `--sip`.
fn resolve(ctx: &Ctx, a: &ServeArgs, with_escrow: bool) -> Result<Config, CliError> {
    let mut opts = ServeOptions::new();
    opts.config_file = a.config.clone();
    // The global --data has a default; it overrides a config file's data_dir only when it was
    // changed from that default (or when there is no file).
    if a.config.is_none() || ctx.global.data != Path::new("callseal-data") {
        opts.data_dir = Some(ctx.global.data.clone());
    }
    opts.pbx = a.pbx.clone();
    if let Some(sip) = &a.sip {
        let addr: SocketAddr = sip.parse().map_err(|_| CliError::Usage {
            message: format!("--sip {sip} is not an IP:PORT address (e.g. 127.0.0.1:5060)"),
        })?;
        opts.sip_listen = Some(addr);
    }
    let mut config = opts.resolve().map_err(gw_err)?;
    if !with_escrow {
        config.escrow.mode = EscrowMode::Remote;
        config.validate().map_err(gw_err)?;
    }
    Ok(config)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CALLSEAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn serve(ctx: &Ctx, a: &ServeArgs, with_escrow: bool) -> Result<(), CliError> {
    init_logging();
    let config = resolve(ctx, a, with_escrow)?;
    // The gateway's half of the data folder is this process's; with the escrow in process, the
    // escrow's half too (`callseal escrow` and `callseal gateway` may share one folder).
    // What can be checked before anything is created is checked first: a first start that
    // fails after creating the deployment would have shown its one-time admin token for nothing.
    callseal_gateway::prompts::PromptSet::load(config.prompts.folder.as_deref()).map_err(gw_err)?;
    let _gateway_lock = lock_folder(&config.gateway_dir())?;
    let _escrow_lock = if with_escrow && config.escrow.mode == EscrowMode::InProcess {
        Some(lock_folder(&config.data_dir.join("escrow"))?)
    } else {
        None
    };
    let (api, identity, escrow_server) =
        if with_escrow && config.escrow.mode == EscrowMode::InProcess {
            let clock: Arc<dyn callseal_escrow::Clock> = match &a.test_clock.test_clock_file {
                Some(f) => Arc::new(callseal_escrow::TestFileClock::new(f).map_err(esc_err)?),
                None => Arc::new(callseal_escrow::SystemClock),
            };
            std::fs::create_dir_all(&config.data_dir).map_err(|e| CliError::Component {
                component: "gateway",
                reason: format!("cannot create {}: {e}", config.data_dir.display()),
            })?;
            let dir = callseal_escrow::DataDir::new(&config.data_dir);
            let listen = match &a.escrow_listen {
                Some(addr) => addr.parse::<SocketAddr>().map_err(|_| CliError::Usage {
                    message: format!(
                        "--escrow-listen {addr} is not an IP:PORT address, e.g. 127.0.0.1:7443"
                    ),
                })?,
                None => dir
                    .url()
                    .and_then(|u| {
                        u.trim()
                            .trim_start_matches("https://")
                            .trim_end_matches('/')
                            .parse::<SocketAddr>()
                            .ok()
                    })
                    .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7443))),
            };
            // Tell "address in use" apart from the server's other failures, before anything is
            // created.
            if let Err(e) = std::net::TcpListener::bind(listen) {
                return Err(CliError::Listen {
                    what: format!("cannot listen for the escrow API on {listen}"),
                    reason: e.to_string(),
                });
            }
            let local =
                callseal_gateway::escrow::in_process(&config.data_dir, clock).map_err(gw_err)?;
            if let Some(report) = &local.created {
                announce_deployment(
                    &config.data_dir,
                    report.admin_token.expose().as_str(),
                    &report.gateway_token_file,
                )?;
            }
            let server = callseal_escrow::server::Server::bind(
                local.service.clone(),
                &dir,
                &callseal_escrow::server::ServerConfig {
                    listen,
                    tick: Duration::from_secs(60),
                },
            )
            .await
            .map_err(esc_err)?;
            tracing::info!(url = %server.url(), "escrow API listening");
            (local.api, local.identity, Some(server))
        } else {
            let (api, identity) = remote(&config)?;
            (api, identity, None)
        };

    let gateway = callseal_gateway::start(config.clone(), api, identity)
        .await
        .map_err(gw_err)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let escrow_task = escrow_server.map(|server| {
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.changed().await;
            };
            if let Err(e) = server.run(shutdown).await {
                tracing::error!("escrow API stopped: {e}");
            }
        })
    });
    wait_for_signal().await;
    tracing::info!("stopping: finishing recordings");
    gateway
        .shutdown(Duration::from_secs(config.limits.shutdown_grace_secs))
        .await;
    let _ = stop_tx.send(true);
    if let Some(t) = escrow_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The HTTPS escrow client from `[escrow]` (mode = "remote").
fn remote(
    config: &Config,
) -> Result<(Arc<dyn EscrowApi>, callseal_gateway::escrow::VerifyingKey), CliError> {
    let e = &config.escrow;
    let missing = |what: &str| CliError::Component {
        component: "gateway",
        reason: format!(
            "[escrow] {what} is required for a remote escrow; see deploy/callseal.example.toml"
        ),
    };
    let url = e.url.clone().ok_or_else(|| missing("url"))?;
    let ca_path = e.ca_cert.clone().ok_or_else(|| missing("ca_cert"))?;
    let ca_pem = std::fs::read(&ca_path).map_err(|err| CliError::Component {
        component: "gateway",
        reason: format!(
            "cannot read the escrow CA certificate {}: {err}",
            ca_path.display()
        ),
    })?;
    let token_path = e.token_file.clone().ok_or_else(|| missing("token_file"))?;
    let token = crate::secrets::load_token(&token_path)?;
    let identity = callseal_escrow::table::parse_identity(
        e.identity.as_deref().ok_or_else(|| missing("identity"))?,
    )
    .map_err(esc_err)?;
    let client =
        callseal_escrow::client::EscrowClient::new(callseal_escrow::client::ClientConfig {
            url,
            ca_pem,
            token: Some(zeroize::Zeroizing::new(token.expose().to_owned())),
            timeout: Duration::from_secs(10),
        })
        .map_err(esc_err)?;
    Ok((Arc::new(Link(client)), identity))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Takes one half of a data folder (`gateway/` or `escrow/`) for this process: a second gateway
/// on the same folder would share its outbox and call records, a second escrow its database
/// and `escrow.url`. The lock is released when the returned file is dropped, or when the
/// process ends, however it ends.
pub(crate) fn lock_folder(dir: &Path) -> Result<std::fs::File, CliError> {
    use std::io::{Seek, Write};
    std::fs::create_dir_all(dir).map_err(|e| CliError::Io {
        what: "cannot create the folder",
        path: dir.to_owned(),
        reason: e.to_string(),
    })?;
    let path = dir.join("serve.lock");
    let io = |what, e: std::io::Error| CliError::Io {
        what,
        path: path.clone(),
        reason: e.to_string(),
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io("cannot open the lock file", e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
                .map(|pid| format!(" (pid {pid})"))
                .unwrap_or_default();
            return Err(CliError::DataFolderBusy {
                path: dir.to_owned(),
                holder,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock", e)),
    }
    // Who holds it, for the message another process shows.
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = writeln!(file, "{}", std::process::id());
    Ok(file)
}

/// Hands over the first admin token of a deployment `serve` just created. On a terminal it is
/// shown once. Anywhere else (a systemd journal, a redirect into a log file) printing it would
/// put a live credential into logs, so it goes into `DATA/admin.token` (0600, never
/// overwritten) and only the path is printed.
fn announce_deployment(
    data: &Path,
    admin_token: &str,
    gateway_token: &Path,
) -> Result<(), CliError> {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprintln!(
            "callseal: created a new deployment in {}.\n  admin token (shown once, keep it safe): {admin_token}\n  \
             the gateway's token is in {}",
            data.display(),
            gateway_token.display()
        );
        return Ok(());
    }
    let path = data.join(ADMIN_TOKEN_FILE);
    write_new_private(&path, format!("{admin_token}\n").as_bytes()).map_err(|e| CliError::Io {
        what: "the deployment was created, but its admin token could not be stored in",
        path: path.clone(),
        reason: format!(
            "{e}; stop the gateway, remove the new data folder and start again (in a terminal the \
             token is shown instead)"
        ),
    })?;
    eprintln!(
        "callseal: created a new deployment in {}.\n  the admin token is in {} (0600; not printed, \
         as this output is not a terminal): store it safely, then delete that file\n  the gateway's \
         token is in {}",
        data.display(),
        path.display(),
        gateway_token.display()
    );
    Ok(())
}

/// Where `serve` leaves the first admin token when its output is not a terminal.
pub(crate) const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Creates `path` (0600; fails if it exists), writes `bytes` and makes both durable.
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
