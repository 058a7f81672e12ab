//! The consent flow (prompt, digit with barge-in, repeats, timeout = decline, confirmation),
//! recording at bridging, withdrawal, and the survey.

use super::call::{PbxState, Recording, State};
use super::{CallManager, Now};
use crate::command::{
    CallHandle, CallOutcome, Command, ConsentEvidence, Decision, Leg, Prompt, PromptOutcome,
    RecordingRef, StopReason, SurveyAnswer,
};
use crate::config::Target;
use crate::timers::Timer;

impl CallManager {
    pub(super) fn play(&mut self, h: CallHandle, leg: Leg, prompt: Prompt, barge_in: bool) {
        if leg == Leg::Caller
            && let Some(call) = self.calls.get_mut(&h)
        {
            call.prompts.push_back(prompt);
        }
        self.push(Command::PlayPrompt {
            call: h,
            leg,
            prompt,
            barge_in,
        });
    }

    pub(super) fn prompt_finished(
        &mut self,
        now: Now,
        h: CallHandle,
        leg: Leg,
        outcome: PromptOutcome,
    ) {
        if leg != Leg::Caller {
            return;
        }
        let digit_timeout = self.config.consent.digit_timeout;
        let survey_timeout = self.config.survey.timeout;
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        let Some(prompt) = call.prompts.pop_front() else {
            return;
        };
        if outcome == PromptOutcome::Stopped {
            // We stopped it (barge-in, replaced): the flow has moved on already.
            return;
        }
        match (call.state, prompt) {
            // Completed, or ended by a digit that was not an answer: wait for the digit.
            (State::PlayingPrompt { plays }, Prompt::Consent) => {
                call.state = State::AwaitingDigit { plays };
                call.timers.set(Timer::Digit, now.instant + digit_timeout);
            }
            (State::Confirming, Prompt::ConfirmYes | Prompt::ConfirmNo) => self.connect(now, h),
            (State::Surveying { answered: false }, Prompt::Survey) => {
                call.timers.set(Timer::Survey, now.instant + survey_timeout);
            }
            (State::Surveying { answered: true }, Prompt::Thanks) => {
                call.outcome.get_or_insert(CallOutcome::Completed);
                self.bye_caller(h, None);
                self.end_when_idle(now, h);
            }
            _ => {}
        }
    }

    pub(super) fn digit(&mut self, now: Now, h: CallHandle, leg: Leg, digit: char) {
        if leg != Leg::Caller || !crate::command::is_dtmf_digit(digit) {
            return;
        }
        let consent = self.config.consent.consent_digit;
        let decline = self.config.consent.decline_digit;
        let (min, max) = (self.config.survey.min, self.config.survey.max);
        let Some(call) = self.calls.get(&h) else {
            return;
        };
        match call.state {
            State::PlayingPrompt { plays } | State::AwaitingDigit { plays } => {
                let decision = if digit == consent {
                    Decision::Consented
                } else if digit == decline {
                    Decision::Declined
                } else {
                    // Any other key is ignored; the question stands.
                    return;
                };
                if matches!(call.state, State::PlayingPrompt { .. }) {
                    // Barge-in (the media engine may have stopped it already; harmless twice).
                    self.push(Command::StopPrompt { call: h, leg });
                }
                self.decide(now, h, decision, Some(digit), plays);
            }
            State::Bridged => self.watch_withdrawal(now, h, digit),
            State::Surveying { answered: false } => {
                let Some(value) = digit.to_digit(10).and_then(|v| u8::try_from(v).ok()) else {
                    return;
                };
                if !(min..=max).contains(&value) {
                    return;
                }
                let line = if self.config.survey.line.is_empty() {
                    call.line.clone()
                } else {
                    self.config.survey.line.clone()
                };
                // Date and line only: no handle, no time of day, no caller (never linkable).
                let answer = SurveyAnswer {
                    line,
                    date: utc_date(now.unix_ms),
                    answer: value,
                };
                if let Some(call) = self.calls.get_mut(&h) {
                    call.state = State::Surveying { answered: true };
                    call.timers.clear(Timer::Survey);
                }
                self.push(Command::StopPrompt { call: h, leg });
                self.push(Command::RecordSurvey { answer });
                self.play(h, Leg::Caller, Prompt::Thanks, false);
            }
            _ => {}
        }
    }

    pub(super) fn digit_timeout(&mut self, now: Now, h: CallHandle) {
        let repeats = self.config.consent.repeats;
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        let State::AwaitingDigit { plays } = call.state else {
            return;
        };
        if plays <= repeats {
            // Repeat on no input.
            call.state = State::PlayingPrompt { plays: plays + 1 };
            self.play(h, Leg::Caller, Prompt::Consent, true);
        } else {
            // Timeout = decline.
            self.decide(now, h, Decision::NoInput, None, plays);
        }
    }

    fn decide(
        &mut self,
        now: Now,
        h: CallHandle,
        decision: Decision,
        digit: Option<char>,
        plays: u8,
    ) {
        let sha = self.config.consent.prompt_sha256;
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        call.timers.clear(Timer::Digit);
        call.decision = Some(decision);
        call.evidence = Some(ConsentEvidence {
            prompt_sha256: sha,
            digit,
            decided_at_unix_ms: now.unix_ms,
            decision,
            prompt_plays: plays,
        });
        call.state = State::Confirming;
        let prompt = if decision.records() {
            Prompt::ConfirmYes
        } else {
            Prompt::ConfirmNo
        };
        self.play(h, Leg::Caller, prompt, false);
    }

    /// After the confirmation: the PBX (B-leg INVITE) or the echo endpoint.
    fn connect(&mut self, now: Now, h: CallHandle) {
        match self.config.target.clone() {
            Target::Echo => {
                if let Some(call) = self.calls.get_mut(&h) {
                    call.echo = true;
                }
                self.push(Command::ConnectEcho { call: h });
                self.bridged(now, h);
            }
            Target::Pbx { next_hop, .. } => self.call_pbx(now, h, next_hop),
        }
    }

    /// Both legs are connected: relay media, and record consenting callers only.
    pub(super) fn bridged(&mut self, now: Now, h: CallHandle) {
        let epoch = self.config.epoch_for(now.unix_ms);
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        call.state = State::Bridged;
        call.timers.clear(Timer::Ring);
        let records = call.decision.is_some_and(Decision::records);
        self.push(Command::BridgeMedia { call: h });
        if records
            && let Some(call) = self.calls.get_mut(&h)
            && call.recording == Recording::Off
        {
            call.recording = Recording::Starting { epoch };
            self.push(Command::StartRecording { call: h, epoch });
        }
    }

    pub(super) fn recording_started(&mut self, _now: Now, h: CallHandle, id: RecordingRef) {
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        let Recording::Starting { epoch } = call.recording else {
            // Started after the caller withdrew or the call ended: erase it at once.
            if call.withdrawn {
                self.push(Command::EraseRecording { recording: id });
            }
            return;
        };
        let Some(evidence) = call.evidence.clone() else {
            return;
        };
        call.recording = Recording::On { id };
        let caller = call.caller.code();
        let line = call.line.clone();
        self.push(Command::DepositKey {
            call: h,
            recording: id,
            epoch,
            evidence,
            caller,
            line,
        });
    }

    pub(super) fn recording_failed(&mut self, h: CallHandle) {
        if let Some(call) = self.calls.get_mut(&h) {
            call.recording = match call.recording {
                Recording::Starting { .. } => Recording::Off,
                Recording::On { .. } => Recording::Done,
                other => other,
            };
        }
    }

    fn watch_withdrawal(&mut self, _now: Now, h: CallHandle, digit: char) {
        let code: Vec<char> = self.config.withdraw_code.chars().collect();
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        if call.withdrawn || call.recording == Recording::Off {
            return;
        }
        call.digits.push(digit);
        let keep = code.len();
        let excess = call.digits.chars().count().saturating_sub(keep);
        if excess > 0 {
            call.digits = call.digits.chars().skip(excess).collect();
        }
        if call.digits.chars().eq(code.iter().copied()) {
            call.withdrawn = true;
            call.digits.clear();
            let id = match call.recording {
                Recording::On { id } => Some(id),
                _ => None,
            };
            call.recording = Recording::Done;
            // Stop at once, then erase; a tone confirms to the caller.
            self.push(Command::StopRecording {
                call: h,
                reason: StopReason::Withdrawn,
            });
            if let Some(id) = id {
                self.push(Command::EraseRecording { recording: id });
            }
            self.play(h, Leg::Caller, Prompt::Withdrawn, false);
        }
    }

    /// The consultant hung up first: survey when enabled, else end the call.
    pub(super) fn pbx_hung_up(&mut self, now: Now, h: CallHandle) {
        let survey = self.config.survey.enabled;
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        if let Some(b) = call.b.as_mut() {
            b.state = PbxState::Terminated;
        }
        match call.state {
            State::Bridged if survey => {
                call.state = State::Surveying { answered: false };
                self.stop_recording(h, StopReason::ConsultantHungUp);
                self.push(Command::UnbridgeMedia { call: h });
                self.play(h, Leg::Caller, Prompt::Survey, true);
            }
            State::Ending => self.end_when_idle(now, h),
            _ => {
                call.outcome.get_or_insert(CallOutcome::Completed);
                self.stop_recording(h, StopReason::CallEnded);
                self.bye_caller(h, None);
                self.end_when_idle(now, h);
            }
        }
    }

    pub(super) fn survey_timeout(&mut self, now: Now, h: CallHandle) {
        if let Some(call) = self.calls.get_mut(&h) {
            call.outcome.get_or_insert(CallOutcome::Completed);
        }
        self.bye_caller(h, None);
        self.end_when_idle(now, h);
    }

    pub(super) fn media_failed(&mut self, now: Now, h: CallHandle, _leg: Leg) {
        self.terminate(now, h, CallOutcome::MediaFailure, "Media failure");
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix time in ms (civil-from-days, proleptic Gregorian).
pub(crate) fn utc_date(unix_ms: u64) -> String {
    let days = i64::try_from(unix_ms / 86_400_000).unwrap_or(0);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::utc_date;

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400_000), "2000-02-29");
        assert_eq!(utc_date(20_791 * 86_400_000 + 86_399_999), "2026-12-04");
    }
}
