//! Operators, retention, epochs, audit and receipts: thin views over the escrow.

use std::io::{BufRead, IsTerminal, Write};

use super::Ctx;
use super::api::{Escrow, OperatorView};
use crate::args::Role;
use crate::error::CliError;
use crate::output::{Table, fields, print_json};
use crate::timefmt::{format_day, format_utc};

fn when(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".into(), |ms| format_utc(ms.div_euclid(1000)))
}

pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Listener => "listener",
        Role::Auditor => "auditor",
        Role::Admin => "admin",
        Role::Gateway => "gateway",
    }
}

/// Operator names: 1–64 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn check_operator_name(name: &str) -> Result<(), CliError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CliError::Usage {
            message: format!(
                "\"{name}\" is not an operator name: use 1-64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
            ),
        })
    }
}

pub async fn operator_add(
    ctx: &Ctx,
    e: &impl Escrow,
    name: &str,
    role: Role,
    public_key: Option<&str>,
) -> Result<(), CliError> {
    check_operator_name(name)?;
    if let Some(pk) = public_key
        && pk.parse::<callseal_recording::keys::PublicKey>().is_err()
    {
        return Err(CliError::Usage {
            message: "--public-key must be the 64 hex digits printed by `callseal operator keygen`"
                .into(),
        });
    }
    let en = e.add_operator(name, role, public_key).await?;
    if ctx.global.json {
        return print_json(
            &serde_json::json!({ "operator": en.operator, "token": en.token.expose() }),
        );
    }
    println!("Enrolled {} as {}.", en.operator.name, role_name(role));
    println!(
        "Token (shown once; hand it over privately, the operator keeps it in a 0600 file or CALLSEAL_TOKEN):"
    );
    println!("{}", en.token.expose());
    if en.operator.status == "pending_agreement" {
        println!(
            "The account becomes active once {} runs `callseal operator acknowledge`.",
            en.operator.name
        );
    }
    Ok(())
}

pub async fn operator_list(ctx: &Ctx, e: &impl Escrow) -> Result<(), CliError> {
    let ops = e.operators().await?;
    if ctx.global.json {
        return print_json(&ops);
    }
    let mut t = Table::new(&["NAME", "ROLE", "STATUS", "ACKNOWLEDGED", "TOKEN EXPIRES"]);
    for o in &ops {
        t.row(row(o));
    }
    print!("{}", t.render());
    Ok(())
}

fn row(o: &OperatorView) -> Vec<String> {
    vec![
        o.name.clone(),
        role_name(o.role).into(),
        o.status.replace('_', " "),
        when(o.acknowledged_at_ms),
        when(o.token_expires_at_ms),
    ]
}

pub async fn operator_disable(ctx: &Ctx, e: &impl Escrow, name: &str) -> Result<(), CliError> {
    check_operator_name(name)?;
    e.disable_operator(name).await?;
    if ctx.global.json {
        return print_json(&serde_json::json!({ "disabled": name }));
    }
    println!("Disabled {name}: their token no longer works.");
    Ok(())
}

/// Shows the agreement, asks for "yes" on a terminal (or takes --yes), then records it.
pub async fn operator_acknowledge(ctx: &Ctx, e: &impl Escrow, yes: bool) -> Result<(), CliError> {
    let a = e.agreement().await?;
    if !ctx.global.json {
        println!("{}\n", a.text.trim_end());
        println!("Agreement fingerprint (SHA-256): {}", a.sha256);
    }
    if !yes {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Err(CliError::Usage {
                message: "acknowledging needs a terminal to type yes in; or add --yes once you have read the text above".into(),
            });
        }
        print!("Type \"yes\" to acknowledge that you have read and accept it: ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        stdin
            .lock()
            .read_line(&mut answer)
            .map_err(|err| CliError::Usage {
                message: format!("could not read the answer: {err}"),
            })?;
        if answer.trim() != "yes" {
            return Err(CliError::AgreementDeclined);
        }
    }
    e.acknowledge(&a.sha256).await?;
    if ctx.global.json {
        return print_json(&serde_json::json!({ "acknowledged": a.sha256 }));
    }
    println!("Acknowledged. Your account is active.");
    Ok(())
}

pub async fn retention_show(ctx: &Ctx, e: &impl Escrow) -> Result<(), CliError> {
    let r = e.retention().await?;
    if ctx.global.json {
        return print_json(&r);
    }
    let mut t = Table::new(&["LINE", "DAYS"]);
    t.row(vec!["(default)".into(), r.default_days.to_string()]);
    for l in &r.lines {
        t.row(vec![l.line.clone(), l.days.to_string()]);
    }
    print!("{}", t.render());
    Ok(())
}

pub async fn retention_set(
    ctx: &Ctx,
    e: &impl Escrow,
    days: u32,
    line: Option<&str>,
) -> Result<(), CliError> {
    let r = e.set_retention(days, line).await?;
    if ctx.global.json {
        return print_json(&r);
    }
    match line {
        Some(l) => println!("Recordings on line {l} are now kept {days} days."),
        None => println!("Recordings are now kept {days} days by default."),
    }
    println!("This applies to new recordings; existing ones keep the epoch they were sealed to.");
    Ok(())
}

pub async fn epochs(ctx: &Ctx, e: &impl Escrow) -> Result<(), CliError> {
    let eps = e.epochs().await?;
    if ctx.global.json {
        return print_json(&eps);
    }
    let mut t = Table::new(&[
        "EPOCH",
        "LAST DAY",
        "STATE",
        "SHRED AT",
        "SHREDDED AT",
        "RECORDINGS",
    ]);
    for ep in &eps {
        t.row(vec![
            ep.id.to_string(),
            format_day(i64::from(ep.id)),
            ep.state.replace('_', " "),
            when(ep.shred_at_ms),
            when(ep.shredded_at_ms),
            ep.recordings.map_or_else(|| "-".into(), |n| n.to_string()),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

pub async fn audit_list(ctx: &Ctx, e: &impl Escrow, since_ms: Option<i64>) -> Result<(), CliError> {
    let entries = e.audit(since_ms).await?;
    if ctx.global.json {
        return print_json(&entries);
    }
    let mut t = Table::new(&[
        "SEQ",
        "TIME (UTC)",
        "ACTOR",
        "ACTION",
        "TARGET",
        "OUTCOME",
        "PURPOSE",
    ]);
    for a in &entries {
        t.row(vec![
            a.seq.to_string(),
            format_utc(a.at_ms.div_euclid(1000)),
            a.actor.clone(),
            a.action.clone(),
            a.target.clone().unwrap_or_else(|| "-".into()),
            a.outcome.clone(),
            a.purpose.clone().unwrap_or_default(),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

pub async fn audit_verify(ctx: &Ctx, e: &impl Escrow) -> Result<(), CliError> {
    let v = e.verify_audit().await?;
    if ctx.global.json {
        print_json(&v)?;
    } else if v.ok {
        println!(
            "Audit log verified: {} entries, hash chain and signatures intact.",
            v.entries
        );
        if let Some(h) = &v.head {
            println!("Head: {h}");
        }
    }
    if v.ok {
        Ok(())
    } else {
        Err(CliError::EscrowRefused {
            code: "audit_broken".into(),
            message: v
                .problem
                .unwrap_or_else(|| "the audit chain does not verify".into()),
        })
    }
}

pub async fn receipts(ctx: &Ctx, e: &impl Escrow, id: Option<&str>) -> Result<(), CliError> {
    let rs = e.receipts(id).await?;
    if ctx.global.json {
        return print_json(&rs);
    }
    if rs.is_empty() {
        println!(
            "No destruction receipts{}.",
            id.map(|i| format!(" for {i}")).unwrap_or_default()
        );
        return Ok(());
    }
    if id.is_some() {
        for r in &rs {
            let mut pairs = vec![
                ("Receipt", r.id.clone()),
                ("Destroyed", r.subject.clone()),
                ("Reason", r.reason.clone()),
                ("At", format_utc(r.destroyed_at_ms.div_euclid(1000))),
            ];
            if let Some(n) = r.recordings {
                pairs.push(("Recordings", n.to_string()));
            }
            pairs.push(("Signature", r.signature.clone()));
            if let Some(v) = r.signature_valid {
                pairs.push((
                    "Signature valid",
                    if v { "yes".into() } else { "NO".into() },
                ));
            }
            println!("{}", fields(&pairs));
        }
        return Ok(());
    }
    let mut t = Table::new(&["RECEIPT", "DESTROYED", "REASON", "AT (UTC)"]);
    for r in &rs {
        t.row(vec![
            r.id.clone(),
            r.subject.clone(),
            r.reason.clone(),
            format_utc(r.destroyed_at_ms.div_euclid(1000)),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names() {
        check_operator_name("dr.meyer").unwrap();
        check_operator_name("gw-1").unwrap();
        for bad in ["", "-x", "Dr", "a b", "../x", &"a".repeat(65)] {
            assert!(check_operator_name(bad).is_err(), "{bad}");
        }
    }
}
