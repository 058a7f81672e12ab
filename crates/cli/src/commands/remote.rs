//! The escrow connection and the commands that run services.

use super::Ctx;
use super::api::*;
use super::doctor::Finding;
use crate::args::{EscrowArgs, InitArgs, Role, ServeArgs};
use crate::error::CliError;
use crate::secrets::{self, Token};

/// A connection to the escrow over HTTPS with the pinned CA and the operator's token.
pub struct Remote {
    url: String,
    #[allow(dead_code)]
    token: Token,
}

pub async fn connect(ctx: &Ctx) -> Result<Remote, CliError> {
    let token = secrets::load_token(&ctx.token_file())?;
    let url = ctx.global.escrow.clone().unwrap_or_else(|| "https://127.0.0.1:7443".into());
    let r = Remote { url, token };
    r.health().await?;
    Ok(r)
}

pub async fn init(_ctx: &Ctx, _a: &InitArgs) -> Result<(), CliError> {
    Err(unavailable())
}

pub async fn serve(_ctx: &Ctx, _a: &ServeArgs, _with_escrow: bool) -> Result<(), CliError> {
    Err(unavailable())
}

pub async fn escrow(_ctx: &Ctx, _a: &EscrowArgs) -> Result<(), CliError> {
    Err(unavailable())
}

pub async fn doctor_checks(_ctx: &Ctx, _out: &mut Vec<Finding>) {}

fn unavailable() -> CliError {
    CliError::Component { component: "escrow client", reason: "not available in this build".into() }
}

impl Escrow for Remote {
    async fn health(&self) -> Result<(), CliError> {
        let hostport = self.url.trim_start_matches("https://").trim_end_matches('/').to_owned();
        tokio::net::TcpStream::connect(&hostport)
            .await
            .map(|_| ())
            .map_err(|e| CliError::EscrowUnreachable { url: self.url.clone(), reason: e.to_string() })
    }
    async fn recordings(&self, _f: &RecordingFilter) -> Result<Vec<RecordingView>, CliError> {
        Err(unavailable())
    }
    async fn recording(&self, _id: &str) -> Result<RecordingView, CliError> {
        Err(unavailable())
    }
    async fn release_key(
        &self,
        _id: &str,
        _purpose: &str,
        _p: &callseal_recording::keys::PublicKey,
    ) -> Result<callseal_recording::keys::WrappedKey, CliError> {
        Err(unavailable())
    }
    async fn erase(&self, _id: &str, _reason: &str) -> Result<(), CliError> {
        Err(unavailable())
    }
    async fn hold(&self, _id: &str, _reason: &str) -> Result<(), CliError> {
        Err(unavailable())
    }
    async fn release_hold(&self, _id: &str) -> Result<(), CliError> {
        Err(unavailable())
    }
    async fn operators(&self) -> Result<Vec<OperatorView>, CliError> {
        Err(unavailable())
    }
    async fn add_operator(&self, _n: &str, _r: Role, _p: Option<&str>) -> Result<Enrolment, CliError> {
        Err(unavailable())
    }
    async fn disable_operator(&self, _n: &str) -> Result<(), CliError> {
        Err(unavailable())
    }
    async fn agreement(&self) -> Result<AgreementView, CliError> {
        Err(unavailable())
    }
    async fn acknowledge(&self, _h: &str) -> Result<(), CliError> {
        Err(unavailable())
    }
    async fn retention(&self) -> Result<RetentionView, CliError> {
        Err(unavailable())
    }
    async fn set_retention(&self, _d: u32, _l: Option<&str>) -> Result<RetentionView, CliError> {
        Err(unavailable())
    }
    async fn epochs(&self) -> Result<Vec<EpochView>, CliError> {
        Err(unavailable())
    }
    async fn audit(&self, _s: Option<i64>) -> Result<Vec<AuditEntryView>, CliError> {
        Err(unavailable())
    }
    async fn verify_audit(&self) -> Result<AuditVerifyView, CliError> {
        Err(unavailable())
    }
    async fn receipts(&self, _id: Option<&str>) -> Result<Vec<ReceiptView>, CliError> {
        Err(unavailable())
    }
}
