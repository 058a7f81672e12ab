//! Child processes for peers: found on PATH or refused with an install hint, bounded in time,
//! killed when their handle drops.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Why a peer could not be run or did not end well.
#[derive(Debug)]
pub enum PeerError {
    /// The tool is not installed.
    Missing {
        /// Program name.
        tool: &'static str,
        /// Debian package that provides it.
        package: &'static str,
    },
    /// Starting or waiting for it failed.
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// It ran past its deadline and was killed.
    Timeout {
        /// Peer name.
        name: String,
        /// Deadline.
        after: Duration,
        /// Its log.
        log: String,
    },
    /// Something the peer said or did was not as expected.
    Protocol(String),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { tool, package } => write!(
                f,
                "'{tool}' is not installed; install it with: apt-get install -y --no-install-recommends {package} \
                 (scripts/test-all does this)"
            ),
            Self::Io { what, source } => write!(f, "{what}: {source}"),
            Self::Timeout { name, after, log } => {
                write!(
                    f,
                    "{name} still running after {after:?}; killed. Its log:\n{log}"
                )
            }
            Self::Protocol(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for PeerError {}

/// The path of `tool` on PATH, or [`PeerError::Missing`] naming the Debian package.
pub fn require_tool(tool: &'static str, package: &'static str) -> Result<PathBuf, PeerError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
        .ok_or(PeerError::Missing { tool, package })
}

/// A running peer: stdout and stderr go to `log`; killed on drop.
pub struct Peer {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

/// How a peer ended.
#[derive(Debug)]
pub struct Finished {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything it printed.
    pub log: String,
}

impl Finished {
    /// Exit code (None when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

impl Peer {
    /// Starts `cmd` in `dir` with output to `dir/<name>.log`.
    pub fn spawn(name: &str, mut cmd: Command, dir: &Path) -> Result<Self, PeerError> {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).map_err(|source| PeerError::Io {
            what: format!("create {}", log.display()),
            source,
        })?;
        let err = out.try_clone().map_err(|source| PeerError::Io {
            what: "duplicate log handle".into(),
            source,
        })?;
        let child = cmd
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| PeerError::Io {
                what: format!("start {name}"),
                source,
            })?;
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
            log,
        })
    }

    /// Process id.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `limit` for the peer to end by itself; kills it otherwise.
    pub fn wait(mut self, limit: Duration) -> Result<Finished, PeerError> {
        let deadline = Instant::now() + limit;
        let Some(mut child) = self.child.take() else {
            return Err(PeerError::Protocol(format!(
                "{} was already reaped",
                self.name
            )));
        };
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    return Ok(Finished {
                        status,
                        log: self.log(),
                    });
                }
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(PeerError::Timeout {
                        name: self.name.clone(),
                        after: limit,
                        log: self.log(),
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(source) => {
                    return Err(PeerError::Io {
                        what: format!("wait for {}", self.name),
                        source,
                    });
                }
            }
        }
    }

    /// Stops the peer now (SIGKILL) and returns its log.
    pub fn kill(mut self) -> String {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.log()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
