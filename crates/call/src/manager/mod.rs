//! The [`CallManager`]: owns every call, routes SIP and media inputs to them, and queues the
//! commands they produce.

mod call;
mod caller;
mod consent;
mod pbx;
mod reinvite;
mod sdp_legs;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use callseal_sip::{Host, Message, Method, NameAddr, SipUri, StatusCode, Uri, Via};

pub use call::State;
use call::{Call, PbxState};

use crate::command::{CallHandle, CallOutcome, CallRecord, Command, Event, Leg};
use crate::config::CallConfig;
use crate::dialog;
use crate::error::ConfigError;
use crate::identity::Pepper;
use crate::ids::IdGenerator;
use crate::sip_io::{ServerTx, SipCommand, SipEvent};
use crate::timers::Timer;

/// The current time, as every input carries it: a monotonic instant for timers and the wall
/// clock (UTC) for evidence, call records, survey dates and escrow epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time.
    pub instant: Instant,
    /// Milliseconds since the Unix epoch, UTC.
    pub unix_ms: u64,
}

impl Now {
    /// Both clocks at once.
    pub fn new(instant: Instant, unix_ms: u64) -> Self {
        Self { instant, unix_ms }
    }

    /// `d` later on both clocks.
    pub fn after(self, d: std::time::Duration) -> Self {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            instant: self.instant + d,
            unix_ms: self.unix_ms.saturating_add(ms),
        }
    }
}

/// The B2BUA core: every call of the gateway.
///
/// Feed it [`SipEvent`]s from the transaction layer, media [`Event`]s from the shell and
/// timeouts; drain [`Command`]s with [`CallManager::poll_command`] after each input and sleep
/// until [`CallManager::poll_timeout`].
pub struct CallManager {
    config: CallConfig,
    pepper: Pepper,
    ids: IdGenerator,
    calls: HashMap<CallHandle, Call>,
    /// A-leg: (Call-ID, caller's From-tag) → call.
    by_caller: HashMap<(String, String), CallHandle>,
    /// A-leg INVITE server transaction → call.
    by_tx: HashMap<ServerTx, CallHandle>,
    /// B-leg Call-ID (ours) → call.
    by_pbx_call_id: HashMap<String, CallHandle>,
    next_handle: u64,
    commands: VecDeque<Command>,
    accepting: bool,
}

impl CallManager {
    /// A manager with validated settings, the pseudonym pepper and a random seed for tags,
    /// branches and Call-IDs (32 bytes from the OS, drawn by the shell).
    pub fn new(config: CallConfig, pepper: Pepper, seed: [u8; 32]) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            pepper,
            ids: IdGenerator::new(seed),
            calls: HashMap::new(),
            by_caller: HashMap::new(),
            by_tx: HashMap::new(),
            by_pbx_call_id: HashMap::new(),
            next_handle: 1,
            commands: VecDeque::new(),
            accepting: true,
        })
    }

    /// The settings.
    pub fn config(&self) -> &CallConfig {
        &self.config
    }

    /// Calls currently alive.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// The state of a call, if it exists.
    pub fn state(&self, call: CallHandle) -> Option<State> {
        self.calls.get(&call).map(|c| c.state)
    }

    /// Whether new calls are taken; `false` answers new INVITEs 503 with Retry-After
    /// (RFC 3261 §21.5.4), e.g. while shutting down.
    pub fn set_accepting(&mut self, accepting: bool) {
        self.accepting = accepting;
    }

    /// Graceful shutdown: stops taking calls and ends every call — BYE on confirmed legs,
    /// CANCEL on ringing ones, 503 to unanswered INVITEs, recordings stopped — then each call
    /// emits its `ReleaseMedia` and `WriteCallRecord` when the answers arrive (or after the
    /// teardown timeout). The shell keeps running until [`CallManager::active_calls`] is 0.
    pub fn shutdown(&mut self, now: Now) {
        self.accepting = false;
        let mut handles: Vec<CallHandle> = self.calls.keys().copied().collect();
        handles.sort();
        for h in handles {
            self.terminate(now, h, CallOutcome::Shutdown, "Gateway shutting down");
        }
    }

    /// A SIP input from the transaction layer.
    pub fn handle_sip(&mut self, now: Now, event: SipEvent) {
        match event {
            SipEvent::Request {
                tx,
                request,
                source,
            } => self.on_request(now, tx, request, source),
            SipEvent::Response { response } => self.on_response(now, response),
            SipEvent::Cancelled { tx } => self.on_cancelled(now, tx),
            SipEvent::AckTimeout { tx } => {
                if let Some(h) = self.by_tx.get(&tx).copied() {
                    self.ack_timeout(now, h);
                }
            }
            SipEvent::RequestFailed {
                branch,
                method,
                failure,
            } => self.on_request_failed(now, &branch, &method, failure),
        }
    }

    /// A result from the shell (media, prompts, digits, recording).
    pub fn handle_event(&mut self, now: Now, event: Event) {
        let handle = event.call();
        if !self.calls.contains_key(&handle) {
            // A late result for a call that is gone: free whatever the shell still holds.
            if matches!(event, Event::MediaAllocated { .. }) {
                self.commands
                    .push_back(Command::ReleaseMedia { call: handle });
            }
            return;
        }
        match event {
            Event::MediaAllocated {
                leg: Leg::Caller,
                local,
                srtp_key,
                ..
            } => self.caller_media_allocated(now, handle, local, srtp_key),
            Event::MediaAllocated {
                leg: Leg::Pbx,
                local,
                ..
            } => self.pbx_media_allocated(now, handle, local),
            Event::MediaFailed { leg, .. } => self.media_failed(now, handle, leg),
            Event::PromptFinished { leg, outcome, .. } => {
                self.prompt_finished(now, handle, leg, outcome)
            }
            Event::DtmfDigit { leg, digit, .. } => self.digit(now, handle, leg, digit),
            Event::RecordingStarted { recording, .. } => {
                self.recording_started(now, handle, recording)
            }
            Event::RecordingFailed { .. } => self.recording_failed(handle),
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Now) {
        let due: Vec<CallHandle> = self
            .calls
            .iter()
            .filter(|(_, c)| c.timers.next().is_some_and(|t| t <= now.instant))
            .map(|(h, _)| *h)
            .collect();
        for handle in due {
            while let Some(timer) = self
                .calls
                .get_mut(&handle)
                .and_then(|c| c.timers.pop_due(now.instant))
            {
                self.timer_fired(now, handle, timer);
            }
        }
    }

    /// The next command for the shell.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// When [`CallManager::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.calls.values().filter_map(|c| c.timers.next()).min()
    }

    fn timer_fired(&mut self, now: Now, handle: CallHandle, timer: Timer) {
        match timer {
            Timer::Digit => self.digit_timeout(now, handle),
            Timer::Survey => self.survey_timeout(now, handle),
            Timer::Ring => self.ring_timeout(now, handle),
            Timer::Teardown => self.finish(now, handle),
        }
    }

    // ---- SIP dispatch ------------------------------------------------------------------

    fn on_request(&mut self, now: Now, tx: Option<ServerTx>, req: Message, source: SocketAddr) {
        let Some(method) = req.method().cloned() else {
            return;
        };
        let to_tag = req.headers.to().and_then(NameAddr::tag).map(str::to_owned);
        let from_tag = req
            .headers
            .from()
            .and_then(NameAddr::tag)
            .map(str::to_owned);
        let call_id = req.headers.call_id().map(str::to_owned);
        let (Some(call_id), Some(from_tag)) = (call_id, from_tag) else {
            // RFC 3261 §8.1.1.3: From MUST carry a tag; no dialog can be matched (case 024).
            if let Some(tx) = tx {
                let mut r = dialog::response(&req, StatusCode::BAD_REQUEST, None, None);
                r.set_reason_phrase("Missing From tag");
                self.send(SipCommand::Respond { tx, response: r });
            }
            return;
        };
        if to_tag.is_none() {
            match method {
                Method::Invite => self.new_call(now, tx, req, source, call_id, from_tag),
                Method::Ack => {}
                Method::Options => self.respond_plain(tx, &req, StatusCode::OK),
                // A BYE outside any dialog (RFC 3261 §15.1.2).
                Method::Bye => self.respond_plain(tx, &req, StatusCode::CALL_DOES_NOT_EXIST),
                _ => self.respond_plain(tx, &req, StatusCode(405)),
            }
            return;
        }
        // In-dialog: the caller's leg is keyed by (Call-ID, From-tag), the PBX leg by our Call-ID.
        if let Some(h) = self.by_caller.get(&(call_id.clone(), from_tag)).copied()
            && self
                .calls
                .get(&h)
                .and_then(|c| c.a.dialog.as_ref())
                .is_some_and(|d| d.matches(&req))
        {
            self.caller_in_dialog(now, h, tx, req);
            return;
        }
        if let Some(h) = self.by_pbx_call_id.get(&call_id).copied()
            && self
                .calls
                .get(&h)
                .and_then(|c| c.b.as_ref())
                .and_then(|b| b.dialog.as_ref())
                .is_some_and(|d| d.matches(&req))
        {
            self.pbx_in_dialog(now, h, tx, req);
            return;
        }
        // RFC 3261 §12.2.2: a request that matches no dialog gets 481 (case 024); never an ACK.
        if method != Method::Ack {
            self.respond_plain(tx, &req, StatusCode::CALL_DOES_NOT_EXIST);
        }
    }

    fn on_response(&mut self, now: Now, resp: Message) {
        let Some(call_id) = resp.headers.call_id() else {
            return;
        };
        if let Some(h) = self.by_pbx_call_id.get(call_id).copied() {
            self.pbx_response(now, h, resp);
        } else if let Some(from_tag) = resp.headers.to().and_then(NameAddr::tag) {
            // Responses on the A-leg: our re-INVITE or BYE towards the caller (To = caller).
            let key = (call_id.to_owned(), from_tag.to_owned());
            if let Some(h) = self.by_caller.get(&key).copied() {
                self.caller_response(now, h, resp);
            }
        }
    }

    fn on_cancelled(&mut self, now: Now, tx: ServerTx) {
        if let Some(h) = self.by_tx.get(&tx).copied() {
            self.caller_cancelled(now, h, tx);
        }
    }

    fn on_request_failed(
        &mut self,
        now: Now,
        branch: &str,
        method: &Method,
        failure: crate::sip_io::TransactionFailure,
    ) {
        let found = self.calls.iter().find_map(|(h, c)| {
            let pbx = c.b.as_ref().is_some_and(|b| {
                b.branch == branch
                    || b.bye.as_deref() == Some(branch)
                    || b.reinvite.as_ref().is_some_and(|r| r.branch == branch)
            });
            let caller = c.a.bye.as_deref() == Some(branch)
                || c.a.reinvite.as_ref().is_some_and(|r| r.branch == branch);
            (pbx || caller).then_some((*h, if pbx { Leg::Pbx } else { Leg::Caller }))
        });
        if let Some((h, leg)) = found {
            self.leg_failed(now, h, leg, method, failure);
        }
    }

    // ---- helpers shared by the submodules ---------------------------------------------

    fn send(&mut self, c: SipCommand) {
        self.commands.push_back(Command::Sip(c));
    }

    fn push(&mut self, c: Command) {
        self.commands.push_back(c);
    }

    fn respond_plain(&mut self, tx: Option<ServerTx>, req: &Message, status: StatusCode) {
        if let Some(tx) = tx {
            let tag = self.ids.token();
            let r = dialog::response(req, status, Some(&tag), None);
            self.send(SipCommand::Respond { tx, response: r });
        }
    }

    fn host(&self) -> Host {
        match self.config.sip_address {
            SocketAddr::V4(a) => Host::V4(*a.ip()),
            SocketAddr::V6(a) => Host::V6(*a.ip()),
        }
    }

    fn via(&mut self, branch: &str) -> Via {
        let mut v = Via::new(
            &self.config.transport,
            self.host(),
            Some(self.config.sip_address.port()),
            branch,
        );
        // RFC 3581 §3: ask for the response to come back to the source port.
        v.params.set("rport", None);
        v
    }

    fn contact(&self) -> NameAddr {
        let mut uri = SipUri::new(
            Some("callseal"),
            self.host(),
            Some(self.config.sip_address.port()),
        );
        if !self.config.transport.eq_ignore_ascii_case("UDP") {
            // RFC 3261 §19.1.4: without it the peer would reach us over UDP.
            uri.params.set(
                "transport",
                Some(&self.config.transport.to_ascii_lowercase()),
            );
        }
        NameAddr::new(Uri::Sip(uri))
    }

    /// Ends a call for good: timers cleared, media released, call record written, indexes
    /// dropped.
    fn finish(&mut self, now: Now, handle: CallHandle) {
        let Some(mut call) = self.calls.remove(&handle) else {
            return;
        };
        call.timers.clear_all();
        if matches!(
            call.recording,
            call::Recording::On { .. } | call::Recording::Starting { .. }
        ) {
            self.push(Command::StopRecording {
                call: handle,
                reason: crate::command::StopReason::CallEnded,
            });
        }
        self.push(Command::ReleaseMedia { call: handle });
        let record = CallRecord {
            caller: call.caller.code(),
            line: call.line.clone(),
            started_at_unix_ms: call.started_unix_ms,
            ended_at_unix_ms: now.unix_ms,
            outcome: call.outcome.clone().unwrap_or(CallOutcome::Completed),
            consent: call.decision,
            recorded: call.evidence.is_some() && call.recording != call::Recording::Off,
            withdrawn: call.withdrawn,
        };
        self.push(Command::WriteCallRecord {
            call: handle,
            record,
        });
        self.by_caller.retain(|_, h| *h != handle);
        self.by_tx.retain(|_, h| *h != handle);
        self.by_pbx_call_id.retain(|_, h| *h != handle);
    }

    /// Moves a call to `Ending` (BYE/CANCEL already sent) or finishes it at once when nothing
    /// is outstanding.
    fn end_when_idle(&mut self, now: Now, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let pbx_busy = call
            .b
            .as_ref()
            .is_some_and(|b| b.bye.is_some() || b.state == PbxState::Cancelling);
        let caller_busy = call.a.bye.is_some();
        if pbx_busy || caller_busy {
            call.state = State::Ending;
            call.timers.clear_all();
            call.timers
                .set(Timer::Teardown, now.instant + self.config.teardown_timeout);
        } else {
            self.finish(now, handle);
        }
    }
}
