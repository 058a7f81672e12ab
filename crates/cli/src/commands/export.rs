//! `recordings export` and `recordings play`: the escrow re-wraps the recording's data key to the
//! operator's X25519 key (after auditing the release); the CLI unwraps it with the operator key
//! file, verifies and decrypts the sealed file locally, and writes WAV.
//!
//! Plaintext exists only where the operator asked: a new 0600 file renamed into place after the
//! whole recording verified (see `plainfile`), or memory piped to a player / stdout.

use std::fs::File;
use std::io::{Cursor, Read, Seek, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use callseal_recording::export::{Channels, ExportError, export_wav};
use callseal_recording::keys::{DataKey, SecretKey, WrappedKey, unwrap};
use callseal_recording::{ReadError, Reader};
use indicatif::{ProgressBar, ProgressStyle};
use zeroize::Zeroizing;

use super::api::Escrow;
use super::recordings::{leg_name, sealed_path};
use super::{Ctx, keygen, remote};
use crate::args::Leg;
use crate::error::CliError;
use crate::output::print_json;
use crate::plainfile::{PlainOutput, remove_all_pending};

/// Where the audio goes.
pub enum Target {
    File(PlainOutput),
    /// A command reading WAV on stdin, or stdout for `-`.
    Player(String),
}

impl Target {
    /// Checks and reserves the output file before anything else happens.
    pub fn file(path: &Path) -> Result<Self, CliError> {
        if path == Path::new("-") {
            return Err(CliError::Usage {
                message: "-o - would write plaintext audio to a file named \"-\"; to stream to \
                          stdout use `callseal recordings play ID --purpose … --player -`"
                    .into(),
            });
        }
        Ok(Target::File(PlainOutput::create(path)?))
    }

    pub fn player(cmd: &str) -> Self {
        Target::Player(cmd.to_owned())
    }
}

pub async fn run(
    ctx: &Ctx,
    id: &str,
    purpose: &str,
    leg: Leg,
    target: Target,
) -> Result<(), CliError> {
    // A strict id before anything else: it names a file below.
    let id = super::recordings::check_id(id)?;
    let id = id.as_str();
    let secret = keygen::load(ctx)?;
    let sealed = sealed_path(&ctx.global.data, id);
    let escrow = remote::connect(ctx).await?;
    let file = match File::open(&sealed) {
        Ok(f) => f,
        Err(_) => {
            // An id the escrow does not know is "unknown", not "file missing".
            escrow.recording(id).await?;
            return Err(CliError::RecordingFileMissing {
                id: id.to_owned(),
                path: sealed.clone(),
            });
        }
    };
    let wrapped = escrow
        .release_key(id, purpose, &secret.public_key())
        .await?;
    if wrapped.recording_id().to_string() != id {
        return Err(CliError::Component {
            component: "key release",
            reason: "the escrow released a key for another recording; nothing was decrypted".into(),
        });
    }
    let key = unwrap_for(&wrapped, &secret, ctx)?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);

    // Ctrl-C must not leave a partial plaintext file: remove it, then exit.
    let guard = tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            remove_all_pending();
            std::process::exit(i32::from(crate::error::exit::INTERRUPTED));
        }
    });
    let json = ctx.global.json;
    let id_owned = id.to_owned();
    let result = tokio::task::spawn_blocking(move || {
        write_target(target, file, total, &key, &wrapped, leg, &id_owned, json)
    })
    .await
    .map_err(|e| CliError::Component {
        component: "export",
        reason: e.to_string(),
    });
    guard.abort();
    let outcome = result??;
    if json {
        print_json(&outcome)?;
    } else {
        match &outcome.path {
            Some(p) => println!(
                "Wrote {} ({:.1} s, {}, {} segments verified). It is plaintext audio: delete it when you are done.",
                p,
                outcome.seconds,
                leg_name(leg),
                outcome.segments
            ),
            None => eprintln!("Played {:.1} s ({}).", outcome.seconds, leg_name(leg)),
        }
    }
    Ok(())
}

fn unwrap_for(
    wrapped: &callseal_recording::keys::WrappedKey,
    secret: &SecretKey,
    ctx: &Ctx,
) -> Result<DataKey, CliError> {
    unwrap(wrapped, secret).map_err(|_| CliError::OperatorKeyMismatch {
        path: ctx.key_file(),
    })
}

#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub path: Option<String>,
    pub seconds: f64,
    pub segments: u64,
    pub leg: &'static str,
}

#[allow(clippy::too_many_arguments)]
fn write_target(
    target: Target,
    file: File,
    total: u64,
    key: &DataKey,
    wrapped: &WrappedKey,
    leg: Leg,
    id: &str,
    json: bool,
) -> Result<Outcome, CliError> {
    let bar = progress(total, json);
    let reader = Progress {
        inner: file,
        bar: bar.clone(),
    };
    match target {
        Target::File(mut out) => {
            let stats = decode(reader, key, wrapped, leg, out.file()?, id)?;
            bar.finish_and_clear();
            let path = out.commit()?;
            Ok(Outcome {
                path: Some(path.display().to_string()),
                seconds: stats.seconds,
                segments: stats.segments,
                leg: leg_name(leg),
            })
        }
        Target::Player(cmd) => {
            // hound needs a seekable sink: build the WAV in memory (wiped afterwards), never on disk.
            let mut buf = Cursor::new(Zeroizing::new(Vec::new()));
            let stats = decode(reader, key, wrapped, leg, &mut WipeCursor(&mut buf), id)?;
            bar.finish_and_clear();
            let bytes = buf.into_inner();
            play(&cmd, &bytes)?;
            Ok(Outcome {
                path: None,
                seconds: stats.seconds,
                segments: stats.segments,
                leg: leg_name(leg),
            })
        }
    }
}

fn play(cmd: &str, wav: &[u8]) -> Result<(), CliError> {
    if cmd == "-" {
        let mut out = std::io::stdout().lock();
        return out.write_all(wav).and_then(|()| out.flush()).map_err(|e| {
            CliError::OutputNotWritable {
                path: "stdout".into(),
                reason: e.to_string(),
            }
        });
    }
    let mut parts = cmd.split_whitespace();
    let program = parts.next().ok_or_else(|| CliError::Usage {
        message: "--player is empty".into(),
    })?;
    let mut child = Command::new(program).args(parts).stdin(Stdio::piped()).spawn().map_err(|e| CliError::Usage {
        message: format!("cannot start the player \"{program}\" ({e}); pass --player \"CMD\" or --player - to write WAV to stdout"),
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A player that quits early closes the pipe; that is not an error of ours.
        let _ = stdin.write_all(wav);
    }
    let _ = child.wait();
    Ok(())
}

fn progress(total: u64, json: bool) -> ProgressBar {
    if json || total == 0 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} decrypting [{bar:30}] {bytes}/{total_bytes} {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Counts bytes read from the sealed file into the progress bar.
struct Progress<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// A seekable in-memory sink over a zeroizing buffer.
struct WipeCursor<'a>(&'a mut Cursor<Zeroizing<Vec<u8>>>);

impl Write for WipeCursor<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let pos = usize::try_from(self.0.position()).map_err(std::io::Error::other)?;
        let v: &mut Vec<u8> = self.0.get_mut();
        let end = pos + buf.len();
        if v.len() < end {
            // Grow in place when possible; a reallocation would leave an unwiped copy behind,
            // so reserve generously up front.
            if v.capacity() < end {
                let mut bigger =
                    Zeroizing::new(Vec::with_capacity(end.max(v.capacity() * 2).max(1 << 20)));
                bigger.extend_from_slice(v);
                std::mem::swap(v, &mut bigger);
            }
            v.resize(end, 0);
        }
        if let Some(dst) = v.get_mut(pos..end) {
            dst.copy_from_slice(buf);
        }
        self.0.set_position(end as u64);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for WipeCursor<'_> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
    }
}

struct Stats {
    seconds: f64,
    segments: u64,
}

/// Verifies and decrypts the sealed file, writing WAV to `out`. Fails, writing nothing usable,
/// on any verification error (the caller removes the unfinished output).
fn decode(
    sealed: impl Read,
    key: &DataKey,
    wrapped: &WrappedKey,
    leg: Leg,
    out: &mut (impl Write + Seek),
    id: &str,
) -> Result<Stats, CliError> {
    let damaged = |detail: String, segments: u64, seconds: f64| CliError::RecordingTampered {
        id: id.to_owned(),
        detail,
        verified_segments: segments,
        verified_seconds: seconds,
    };
    let reader = Reader::new_expecting(sealed, key, wrapped.recording_id(), wrapped.epoch())
        .map_err(|e| match e {
            ReadError::Truncated {
                verified_segments, ..
            } => CliError::RecordingTruncated {
                id: id.to_owned(),
                verified_segments,
                verified_seconds: 0.0,
            },
            other => damaged(other.to_string(), 0, 0.0),
        })?;
    let channels = match leg {
        Leg::Caller => Channels::Caller,
        Leg::Consultant => Channels::Consultant,
        Leg::Both => Channels::Stereo,
    };
    match export_wav(reader, out, channels, |_| {}) {
        Ok(report) => Ok(Stats {
            seconds: report.seconds,
            segments: report.segments,
        }),
        Err(ExportError::Incomplete {
            report,
            cause: ReadError::Truncated {
                verified_segments, ..
            },
        }) => Err(CliError::RecordingTruncated {
            id: id.to_owned(),
            verified_segments,
            verified_seconds: report.seconds,
        }),
        Err(ExportError::Incomplete { report, cause }) => {
            Err(damaged(cause.to_string(), report.segments, report.seconds))
        }
        Err(ExportError::Wav { reason }) => Err(CliError::OutputNotWritable {
            path: "the WAV output".into(),
            reason,
        }),
        Err(e) => Err(CliError::Component {
            component: "export",
            reason: e.to_string(),
        }),
    }
}
