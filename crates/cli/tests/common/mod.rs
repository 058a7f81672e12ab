//! Runs the built `callseal` binary with a clean environment; `world` adds a deployment with a
//! running escrow.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

pub mod world;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts the exit code, printing both streams when it differs.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn stderr_has(&self, s: &str) -> &Self {
        assert!(
            self.stderr.contains(s),
            "stderr lacks {s:?}:\n{}",
            self.stderr
        );
        self
    }

    pub fn stdout_has(&self, s: &str) -> &Self {
        assert!(
            self.stdout.contains(s),
            "stdout lacks {s:?}:\n{}",
            self.stdout
        );
        self
    }
}

/// A `callseal` command with no CALLSEAL_* variables from the caller's environment.
pub fn callseal(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_callseal"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CALLSEAL_") {
            c.env_remove(k);
        }
    }
    c.env("NO_COLOR", "1").arg("--data").arg(data);
    c
}

pub fn run(data: &Path, args: &[&str]) -> Run {
    Run::from(callseal(data).args(args).output().expect("run callseal"))
}

/// A loopback port with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
