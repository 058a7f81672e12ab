//! Execution of the call core's commands, one call's I/O at a time.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use callseal_call::{
    CallHandle, CallOutcome, Command, ConsentEvidence, Decision, Event, IpFamily, Leg,
    Prompt as CallPrompt, PromptOutcome, RecordingRef, StopReason,
};
use callseal_escrow::{CallerCode, LineId, Timestamp};
use callseal_media::{MediaEvent, Playback, Prompt, SessionConfig};
use callseal_recording::keys::{EpochId, RecordingId, WrappedKey};
use tokio::sync::oneshot;

use super::Shell;
use super::media_map::{call_leg, echo_leg, leg_config, media_leg};
use crate::media_engine::{self, MediaCmd, MediaHandle, MediaReport};
use crate::metrics::ConsentOutcome;
use crate::outbox::OutboxItem;
use crate::prompts::{PromptName, PromptSet};
use crate::recorder::{Recorder, Started};
use crate::records::{CallRecord, ConsentDecision, SurveyAnswer, rfc3339};

/// The prompts as the media core plays them, with their file hashes.
pub struct PromptLibrary {
    prompts: HashMap<PromptName, Prompt>,
    /// SHA-256 of the consent prompt file (goes into the consent evidence).
    pub consent_sha256: [u8; 32],
}

impl PromptLibrary {
    /// From decoded prompt files.
    pub fn new(set: &PromptSet) -> Self {
        let prompts = PromptName::ALL
            .iter()
            .map(|&n| (n, Prompt::from_samples(set.get(n).samples.clone())))
            .collect();
        Self {
            prompts,
            consent_sha256: set.get(PromptName::Consent).sha256,
        }
    }

    fn get(&self, p: CallPrompt) -> Option<Prompt> {
        let name = match p {
            CallPrompt::Consent => PromptName::Consent,
            CallPrompt::ConfirmYes => PromptName::ConfirmYes,
            CallPrompt::ConfirmNo => PromptName::ConfirmNo,
            CallPrompt::Withdrawn => PromptName::Withdrawn,
            CallPrompt::Survey => PromptName::Survey,
            CallPrompt::Thanks => PromptName::Thanks,
        };
        self.prompts.get(&name).cloned()
    }
}

/// A recording's key material, then its deposit. The deposit is queued as soon as the
/// consent evidence arrives (with no end time, so a crash never orphans the recording) and
/// queued again with the end time when the recording stops (the escrow updates it).
struct PendingDeposit {
    recording: RecordingId,
    epoch: EpochId,
    wrapped: WrappedKey,
    started_unix_ms: u64,
    queued: Option<callseal_escrow::Deposit>,
}

/// What the shell holds for one call.
pub(crate) struct CallIo {
    media: MediaHandle,
    recorder: Option<Recorder>,
    deposit: Option<PendingDeposit>,
    echo: Option<tokio::task::JoinHandle<()>>,
    pbx_reached: bool,
    recording_kept: Option<String>,
    withdrawn: bool,
    /// telephone-event PTs the legs negotiated to send to us (what the tap records), for the
    /// recording header's payload-type table.
    event_pts: Vec<u8>,
}

impl Drop for CallIo {
    fn drop(&mut self) {
        if let Some(echo) = self.echo.take() {
            echo.abort();
        }
        let _ = self.media.send(MediaCmd::Release);
    }
}

impl Shell {
    pub(super) fn execute(&mut self, cmd: Command) {
        match cmd {
            Command::AllocateMedia {
                call,
                leg,
                family,
                srtp,
            } => self.allocate(call, leg, family, srtp),
            Command::ConfigureMedia { call, params } => match leg_config(params) {
                Ok((leg, config)) => {
                    self.note_event_pt(call, config.receive.telephone_event);
                    self.media(
                        call,
                        MediaCmd::Configure {
                            leg,
                            config: Box::new(config),
                        },
                    )
                }
                Err(reason) => {
                    tracing::warn!(%call, "media parameters refused: {reason}");
                    self.events.push_back(Event::MediaFailed {
                        call,
                        leg: Leg::Caller,
                    });
                }
            },
            Command::PlayPrompt {
                call,
                leg,
                prompt,
                barge_in,
            } => match self.res.prompts.get(prompt) {
                Some(p) => {
                    let mut playback = Playback::once(p);
                    playback.barge_in = barge_in;
                    self.media(
                        call,
                        MediaCmd::Play {
                            leg: media_leg(leg),
                            playback,
                        },
                    );
                }
                None => self.events.push_back(Event::PromptFinished {
                    call,
                    leg,
                    outcome: PromptOutcome::Stopped,
                }),
            },
            Command::StopPrompt { call, leg } => {
                self.media(call, MediaCmd::StopPrompt(media_leg(leg)))
            }
            Command::BridgeMedia { call } => self.media(call, MediaCmd::Bridge(true)),
            Command::UnbridgeMedia { call } => self.media(call, MediaCmd::Bridge(false)),
            Command::ConnectEcho { call } => self.connect_echo(call),
            Command::StartRecording { call, epoch } => self.start_recording(call, epoch),
            Command::DepositKey {
                call,
                recording,
                evidence,
                caller,
                line,
                ..
            } => {
                self.deposit_key(call, recording, evidence, &caller.to_string(), &line);
            }
            Command::StopRecording { call, reason } => self.stop_recording(call, reason),
            Command::EraseRecording { recording } => {
                let item = OutboxItem::Erase {
                    recording: RecordingId::from_bytes(recording.0).to_string(),
                    reason: "consent withdrawn by the caller during the call".into(),
                };
                if let Err(e) = self.res.outbox.push(&item) {
                    tracing::error!("erasure could not be queued: {e}");
                }
            }
            Command::RecordSurvey { answer } => {
                let line = SurveyAnswer {
                    date: answer.date,
                    line: answer.line,
                    answer: char::from_digit(u32::from(answer.answer), 10).unwrap_or('?'),
                };
                if let Err(e) = self.res.survey.append(&line) {
                    tracing::error!("survey answer not stored: {e}");
                }
            }
            Command::WriteCallRecord { call, record } => self.call_record(call, record),
            Command::ReleaseMedia { call } => {
                // A recording still open here was not stopped by the core: keep it.
                self.stop_recording(call, StopReason::CallEnded);
                if let Some(io) = self.calls.get_mut(&call) {
                    let _ = io.media.send(MediaCmd::Release);
                }
            }
            Command::Sip(sip) => self.endpoint.command(super::now(), sip),
            other => tracing::warn!("command not executed by this gateway version: {other:?}"),
        }
    }

    fn media(&self, call: CallHandle, cmd: MediaCmd) {
        if let Some(io) = self.calls.get(&call) {
            let _ = io.media.send(cmd);
        }
    }

    fn io(&mut self, call: CallHandle) -> Result<&mut CallIo, crate::GatewayError> {
        if !self.calls.contains_key(&call) {
            let (a, b) = media_engine::random_streams()?;
            let config = SessionConfig {
                latching_window: Duration::from_secs(2),
                media_timeout: Some(Duration::from_secs(
                    self.res.config.media.inactivity_timeout_secs.max(1),
                )),
                caller_stream: a,
                pbx_stream: b,
            };
            let media = self.res.media.open(call, config, self.reports_tx.clone());
            self.res.metrics.calls_total.fetch_add(1, Ordering::Relaxed);
            self.calls.insert(
                call,
                CallIo {
                    media,
                    recorder: None,
                    deposit: None,
                    echo: None,
                    pbx_reached: false,
                    recording_kept: None,
                    withdrawn: false,
                    event_pts: Vec::new(),
                },
            );
        }
        self.calls
            .get_mut(&call)
            .ok_or_else(|| crate::GatewayError::TaskFailed("call state vanished".into()))
    }

    fn allocate(&mut self, call: CallHandle, leg: Leg, family: IpFamily, srtp: bool) {
        let bind = self.res.config.media.bind;
        let family_ok = matches!(
            (family, bind),
            (IpFamily::V4, std::net::IpAddr::V4(_)) | (IpFamily::V6, std::net::IpAddr::V6(_))
        );
        let result = if family_ok {
            self.res.pool.allocate()
        } else {
            Err(crate::GatewayError::ConfigInvalid {
                setting: "media.bind",
                reason: format!(
                    "the {family:?} offer cannot use the configured media address {bind}"
                ),
            })
        };
        let srtp_key = if srtp {
            let mut k = vec![0u8; 46];
            match getrandom::fill(&mut k) {
                Ok(()) => Some(callseal_call::sdp::SrtpMasterKey::from_bytes(k)),
                Err(e) => {
                    tracing::error!("no randomness for SRTP keys: {e}");
                    self.events.push_back(Event::MediaFailed { call, leg });
                    return;
                }
            }
        } else {
            None
        };
        match result.and_then(|pair| {
            let port = pair.port;
            let io = self.io(call)?;
            if leg == Leg::Pbx {
                io.pbx_reached = true;
            }
            let _ = io.media.send(MediaCmd::Attach {
                leg: media_leg(leg),
                pair,
            });
            Ok(port)
        }) {
            Ok(port) => {
                let ip = self.res.config.media.advertised.unwrap_or(bind);
                self.events.push_back(Event::MediaAllocated {
                    call,
                    leg,
                    local: std::net::SocketAddr::new(ip, port),
                    srtp_key,
                });
            }
            Err(e) => {
                tracing::error!(%call, ?leg, "media allocation failed: {e}");
                self.res
                    .metrics
                    .calls_rejected
                    .fetch_add(1, Ordering::Relaxed);
                self.events.push_back(Event::MediaFailed { call, leg });
            }
        }
    }

    fn connect_echo(&mut self, call: CallHandle) {
        tracing::warn!(%call, "DEMO MODE: no PBX configured (--pbx); the caller is connected to the built-in echo endpoint");
        let bind = self.res.config.media.bind;
        let pair = match self.res.pool.allocate() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(%call, "echo endpoint: {e}");
                self.events.push_back(Event::MediaFailed {
                    call,
                    leg: Leg::Pbx,
                });
                return;
            }
        };
        let std_sock = match std::net::UdpSocket::bind((bind, 0))
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(%call, "echo endpoint socket: {e}");
                self.events.push_back(Event::MediaFailed {
                    call,
                    leg: Leg::Pbx,
                });
                return;
            }
        };
        let Ok(echo_addr) = std_sock.local_addr() else {
            return;
        };
        let Ok(io) = self.io(call) else { return };
        let task = tokio::spawn(async move {
            let Ok(sock) = tokio::net::UdpSocket::from_std(std_sock) else {
                return;
            };
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                let _ = sock.send_to(buf.get(..n).unwrap_or_default(), from).await;
            }
        });
        io.echo = Some(task);
        io.pbx_reached = true;
        let _ = io.media.send(MediaCmd::Attach {
            leg: callseal_media::Leg::Pbx,
            pair,
        });
        let config = echo_leg(echo_addr);
        let event_pt = config.receive.telephone_event;
        let _ = io.media.send(MediaCmd::Configure {
            leg: callseal_media::Leg::Pbx,
            config: Box::new(config),
        });
        self.note_event_pt(call, event_pt);
    }

    fn note_event_pt(&mut self, call: CallHandle, pt: Option<u8>) {
        if let (Some(pt), Ok(io)) = (pt, self.io(call))
            && !io.event_pts.contains(&pt)
        {
            io.event_pts.push(pt);
        }
    }

    fn start_recording(&mut self, call: CallHandle, epoch: u32) {
        let epoch = EpochId(epoch);
        let Some(key) = self.res.epochs.public_key(epoch) else {
            tracing::error!(%call, %epoch, "recording not started: the escrow's epoch table has no key for this epoch yet");
            self.events.push_back(Event::RecordingFailed { call });
            return;
        };
        let dir = self.res.config.recordings_dir();
        let segment = Duration::from_millis(u64::from(self.res.config.recording.segment_ms));
        let event_pts = self
            .calls
            .get(&call)
            .map(|io| io.event_pts.clone())
            .unwrap_or_default();
        match Recorder::create(
            &dir,
            epoch,
            &key,
            segment,
            &event_pts,
            self.res.metrics.clone(),
        ) {
            Ok(Started {
                recorder,
                tap,
                wrapped,
            }) => {
                let id = recorder.id();
                let Ok(io) = self.io(call) else { return };
                let _ = io.media.send(MediaCmd::StartRecording {
                    recorder: recorder.clone(),
                    tap,
                });
                io.recorder = Some(recorder);
                io.deposit = Some(PendingDeposit {
                    recording: id,
                    epoch,
                    wrapped,
                    started_unix_ms: super::now().unix_ms,
                    queued: None,
                });
                tracing::info!(%call, recording = %id, "recording started");
                self.events.push_back(Event::RecordingStarted {
                    call,
                    recording: RecordingRef(id.to_bytes()),
                });
            }
            Err(e) => {
                tracing::error!(%call, "recording not started: {e}");
                self.events.push_back(Event::RecordingFailed { call });
            }
        }
    }

    fn stop_recording(&mut self, call: CallHandle, reason: StopReason) {
        let Some(io) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(rec) = io.recorder.take() else {
            return;
        };
        let discard = reason == StopReason::Withdrawn;
        let _ = io.media.send(MediaCmd::StopRecording {
            discard,
            done: oneshot::channel().0,
        });
        if discard {
            io.deposit = None;
            io.withdrawn = true;
            io.recording_kept = Some(rec.id().to_string());
            self.res.metrics.withdrawals.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%call, recording = %rec.id(), "consent withdrawn: recording discarded, erasure follows");
        } else {
            io.recording_kept = Some(rec.id().to_string());
            self.deposit_end(call, super::now().unix_ms);
        }
    }

    /// Queues the deposit again with its end time.
    fn deposit_end(&mut self, call: CallHandle, end_ms: u64) {
        let Some(d) = self.calls.get_mut(&call).and_then(|io| io.deposit.as_mut()) else {
            return;
        };
        let Some(mut deposit) = d.queued.take() else {
            tracing::error!(%call, recording = %d.recording, "recording ended before its consent evidence arrived: key not deposited");
            return;
        };
        deposit.ended_at = Some(ts(end_ms));
        let item = OutboxItem::Deposit(Box::new(deposit));
        if let Err(e) = self.res.outbox.push(&item) {
            tracing::error!(%call, "end of recording not queued for the escrow: {e}");
        }
    }

    fn deposit_key(
        &mut self,
        call: CallHandle,
        recording: RecordingRef,
        ev: ConsentEvidence,
        caller: &str,
        line: &str,
    ) {
        let Some(d) = self.calls.get_mut(&call).and_then(|io| io.deposit.as_mut()) else {
            return;
        };
        if d.recording.as_bytes() != &recording.0 || d.queued.is_some() {
            return;
        }
        let (caller_code, line_id) = match (
            CallerCode::new(caller),
            LineId::new(if line.is_empty() { "default" } else { line }),
        ) {
            (Ok(c), Ok(l)) => (c, l),
            (c, l) => {
                tracing::error!(%call, "deposit not queued: caller code or line refused ({:?} / {:?})", c.err(), l.err());
                return;
            }
        };
        let mut consent = callseal_escrow::ConsentEvidence {
            digit: ev.digit,
            decided_at: ts(ev.decided_at_unix_ms),
            prompt_sha256: hex::encode(ev.prompt_sha256),
            gateway_key: Some(hex::encode(self.res.signing_key.verifying_key().to_bytes())),
            signature: None,
        };
        consent.signature = Some(hex::encode(
            self.res
                .signing_key
                .sign(&consent.signed_message(&d.recording)),
        ));
        let deposit = callseal_escrow::Deposit {
            recording: d.recording,
            epoch: d.epoch,
            wrapped_key: d.wrapped.clone(),
            caller_code,
            line: line_id,
            gateway: self.res.gateway_id.clone(),
            started_at: ts(d.started_unix_ms),
            ended_at: None,
            consent,
        };
        match self
            .res
            .outbox
            .push(&OutboxItem::Deposit(Box::new(deposit.clone())))
        {
            Ok(()) => {
                tracing::info!(%call, recording = %d.recording, "key deposit queued");
                d.queued = Some(deposit);
            }
            Err(e) => {
                tracing::error!(%call, recording = %d.recording, "key deposit could not be queued: {e}")
            }
        }
    }

    fn call_record(&mut self, call: CallHandle, record: callseal_call::CallRecord) {
        let io = self.calls.remove(&call);
        let consent = match (record.consent, record.withdrawn) {
            (_, true) => ConsentDecision::Withdrawn,
            (Some(Decision::Consented), _) => ConsentDecision::Consented,
            (Some(Decision::NoInput), _) => ConsentDecision::Timeout,
            (Some(_), _) => ConsentDecision::Declined,
            (None, _) => ConsentDecision::HungUp,
        };
        self.res.metrics.consent(match consent {
            ConsentDecision::Consented | ConsentDecision::Withdrawn => ConsentOutcome::Yes,
            ConsentDecision::Declined => ConsentOutcome::No,
            ConsentDecision::Timeout => ConsentOutcome::Timeout,
            ConsentDecision::HungUp => ConsentOutcome::HangUp,
        });
        let (pbx_reached, recording) = match io {
            Some(mut io) => (
                io.pbx_reached && !matches!(record.outcome, CallOutcome::AbandonedDuringPrompt),
                io.recording_kept.take(),
            ),
            None => (false, None),
        };
        let line = CallRecord {
            started: rfc3339(unix(record.started_at_unix_ms)),
            ended: rfc3339(unix(record.ended_at_unix_ms)),
            caller: record.caller.to_string(),
            line: record.line.clone(),
            consent,
            outcome: outcome_name(&record.outcome),
            pbx_reached,
            recording,
        };
        if let Err(e) = self.res.records.append(&line) {
            tracing::error!("call record not written: {e}");
        }
    }

    pub(super) fn media_report(&mut self, call: CallHandle, report: MediaReport) {
        match report {
            MediaReport::Event(MediaEvent::DtmfDigit { leg, digit, .. }) => {
                self.events.push_back(Event::DtmfDigit {
                    call,
                    leg: call_leg(leg),
                    digit: digit.as_char(),
                });
            }
            MediaReport::Event(MediaEvent::PromptFinished { leg, outcome }) => {
                let outcome = match outcome {
                    callseal_media::PromptOutcome::Completed => PromptOutcome::Completed,
                    callseal_media::PromptOutcome::BargedIn { .. } => PromptOutcome::BargedIn,
                    _ => PromptOutcome::Stopped,
                };
                self.events.push_back(Event::PromptFinished {
                    call,
                    leg: call_leg(leg),
                    outcome,
                });
            }
            MediaReport::Event(MediaEvent::MediaTimeout { leg, silent_for }) => {
                tracing::warn!(%call, ?leg, ?silent_for, "no RTP: ending the call");
                self.events.push_back(Event::MediaFailed {
                    call,
                    leg: call_leg(leg),
                });
            }
            MediaReport::Event(MediaEvent::RecordingFailed { error }) => {
                tracing::error!(%call, "recording failed: {error}");
                if let Some(io) = self.calls.get_mut(&call)
                    && let Some(rec) = io.recorder.take()
                {
                    io.recording_kept = Some(rec.id().to_string());
                    self.deposit_end(call, super::now().unix_ms);
                }
                self.events.push_back(Event::RecordingFailed { call });
            }
            MediaReport::Event(ev) => tracing::debug!(%call, "media: {ev:?}"),
            MediaReport::Failed { leg, reason } => {
                tracing::warn!(%call, ?leg, "media: {reason}");
                self.events.push_back(Event::MediaFailed {
                    call,
                    leg: call_leg(leg),
                });
            }
            MediaReport::Ended { stats } => {
                let (caller, pbx) = *stats;
                tracing::debug!(%call, caller_in = caller.packets_received, pbx_in = pbx.packets_received, "media ended");
            }
        }
    }

    /// Shutdown of one call: the recording is finished and the end of its deposit queued.
    pub(super) async fn finalise(&mut self, call: CallHandle, now_ms: u64) {
        let Some(io) = self.calls.get_mut(&call) else {
            return;
        };
        if io.recorder.take().is_some() {
            let (done, wait) = oneshot::channel();
            let _ = io.media.send(MediaCmd::StopRecording {
                discard: false,
                done,
            });
            let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
            self.deposit_end(call, now_ms);
        }
        self.calls.remove(&call);
    }
}

fn ts(ms: u64) -> Timestamp {
    Timestamp::from_unix_ms(i64::try_from(ms).unwrap_or(i64::MAX))
}

fn unix(ms: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + Duration::from_millis(ms)
}

fn outcome_name(o: &CallOutcome) -> String {
    match o {
        CallOutcome::Completed => "completed".into(),
        CallOutcome::AbandonedDuringPrompt => "abandoned-during-prompt".into(),
        CallOutcome::AbandonedBeforeAnswer => "abandoned-before-answer".into(),
        CallOutcome::AnsweredAfterCancel => "answered-after-cancel".into(),
        CallOutcome::PbxRejected { status } => format!("pbx-rejected-{status}"),
        CallOutcome::PbxUnreachable => "pbx-unreachable".into(),
        CallOutcome::OfferRejected => "offer-rejected".into(),
        CallOutcome::MediaFailure => "media-failure".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}
