//! `callseal operator keygen`: the operator's own X25519 key. The escrow re-wraps released data
//! keys to its public half; only this file can open them.

use std::path::PathBuf;

use callseal_recording::keys::SecretKey;

use super::Ctx;
use crate::error::CliError;
use crate::output::print_json;
use crate::secrets;

pub(crate) fn run(ctx: &Ctx, output: Option<PathBuf>) -> Result<(), CliError> {
    let path = output.unwrap_or_else(|| ctx.key_file());
    let secret = SecretKey::generate().map_err(|e| CliError::Component {
        component: "key generation",
        reason: e.to_string(),
    })?;
    let public = secret.public_key();
    secrets::write_private_new(
        &path,
        secrets::encode_operator_key(&secret.expose_bytes()).as_bytes(),
    )?;
    if ctx.global.json {
        print_json(&serde_json::json!({ "key_file": path, "public_key": public.to_string() }))
    } else {
        println!(
            "Wrote your operator key to {} (mode 0600). Keep it private; never copy it to a shared folder.",
            path.display()
        );
        println!(
            "Public key (give it to an admin for `callseal operator add NAME --role ROLE --public-key ...`):"
        );
        println!("{public}");
        Ok(())
    }
}

/// The operator's secret key from the key file (mode-checked).
pub(crate) fn load(ctx: &Ctx) -> Result<SecretKey, CliError> {
    let bytes = secrets::load_operator_key(&ctx.key_file())?;
    Ok(SecretKey::from_bytes(*bytes.expose()))
}
