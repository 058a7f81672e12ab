//! The retention scheduler (sans-IO): decides which epochs to create, which to put into
//! pending destruction and which to destroy, from a snapshot of epoch states and the injected
//! wall-clock and monotonic readings. It never performs the actions itself; the service does,
//! each action in one storage transaction, so a crash between actions simply makes the next
//! `plan` emit the remaining ones again.
//!
//! Two phases, as in cloud KMS key deletion: `Active` → `PendingDestruction` (keys unusable,
//! an admin may cancel) → `Destroyed` (irreversible). Both transitions require a trusted clock.

use std::time::{Duration, Instant};

use crate::clock::{ClockAlert, ClockGuard, ClockVerdict};
use crate::ids::{DAY_MS, Timestamp};

/// Lifecycle phase of an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpochPhase {
    /// Keys usable; gateways may wrap to it.
    Active,
    /// Retention over: keys unusable, destruction follows after the pending window.
    PendingDestruction,
    /// The epoch secret and all its wrapped keys are gone.
    Destroyed,
}

impl EpochPhase {
    /// Stable text form (storage and API).
    pub fn as_str(self) -> &'static str {
        match self {
            EpochPhase::Active => "active",
            EpochPhase::PendingDestruction => "pending_destruction",
            EpochPhase::Destroyed => "destroyed",
        }
    }
    /// Parses the text form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(EpochPhase::Active),
            "pending_destruction" => Some(EpochPhase::PendingDestruction),
            "destroyed" => Some(EpochPhase::Destroyed),
            _ => None,
        }
    }
}

/// What the scheduler needs to know about one epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochView {
    /// Epoch id (UTC day number of the window's last day).
    pub epoch: u32,
    /// Current phase.
    pub phase: EpochPhase,
    /// When retention ends (start of the day after the epoch's day).
    pub shred_after: Timestamp,
    /// When the epoch entered pending destruction.
    pub pending_since: Option<Timestamp>,
    /// An admin cancelled a shred: do not start again before this instant.
    pub deferred_until: Option<Timestamp>,
}

/// An action for the service to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetentionAction {
    /// Create keypairs for these epochs (ahead of need).
    CreateEpochs(Vec<u32>),
    /// Move an epoch into pending destruction.
    BeginShred(u32),
    /// Destroy an epoch's secret and wrapped keys.
    CompleteShred(u32),
    /// Tell operators (log, metrics, health).
    Alert(ClockAlert),
}

/// The result of one planning round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Actions in the order to perform them.
    pub actions: Vec<RetentionAction>,
    /// The clock verdict used for this plan.
    pub clock: ClockVerdict,
    /// Epochs that are due but held back because the clock is untrusted.
    pub blocked: Vec<u32>,
    /// The next wall-clock instant at which something becomes due.
    pub next_due: Option<Timestamp>,
}

/// Tunables of the scheduler.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// How long an epoch stays pending (unusable, cancellable) before destruction.
    pub pending_window: Duration,
    /// How many days of epochs to create beyond each retention period.
    pub lookahead_days: u32,
    /// Allowed disagreement between wall and monotonic time between two readings.
    pub clock_tolerance: Duration,
    /// Longest unobserved time (escrow stopped) accepted without an operator's confirm.
    pub max_unobserved_gap: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            pending_window: Duration::from_secs(3600),
            lookahead_days: 7,
            clock_tolerance: Duration::from_secs(300),
            max_unobserved_gap: Duration::from_secs(36 * 3600),
        }
    }
}

/// The retention scheduler (sans-IO).
#[derive(Debug)]
pub struct RetentionScheduler {
    config: RetentionConfig,
    guard: ClockGuard,
}

impl RetentionScheduler {
    /// A scheduler with `config`.
    pub fn new(config: RetentionConfig) -> Self {
        let guard = ClockGuard::new(config.clock_tolerance);
        RetentionScheduler { config, guard }
    }

    /// After a (re)start: compare the persisted heartbeat with the current reading.
    pub fn resume(
        &mut self,
        last_seen: Option<Timestamp>,
        wall: Timestamp,
        mono: Instant,
    ) -> Option<ClockAlert> {
        self.guard
            .resume(last_seen, wall, mono, self.config.max_unobserved_gap)
    }

    /// Checks the clock only (used before any destructive action outside `plan`).
    pub fn check_clock(
        &mut self,
        wall: Timestamp,
        mono: Instant,
    ) -> (ClockVerdict, Option<ClockAlert>) {
        self.guard.observe(wall, mono)
    }

    /// An operator confirmed the wall clock.
    pub fn confirm_clock(&mut self, wall: Timestamp, mono: Instant) {
        self.guard.confirm(wall, mono);
    }

    /// The current clock verdict.
    pub fn verdict(&self) -> ClockVerdict {
        self.guard.verdict()
    }

    /// The configuration.
    pub fn config(&self) -> &RetentionConfig {
        &self.config
    }

    /// Plans one round from `epochs` (all non-destroyed epochs) and the retention periods in use.
    pub fn plan(
        &mut self,
        wall: Timestamp,
        mono: Instant,
        epochs: &[EpochView],
        retention_days: &[u32],
    ) -> Plan {
        let (clock, alert) = self.guard.observe(wall, mono);
        let mut actions = Vec::new();
        if let Some(a) = alert {
            actions.push(RetentionAction::Alert(a));
        }
        let wanted = self.wanted_epochs(wall, retention_days);
        let missing: Vec<u32> = wanted
            .into_iter()
            .filter(|e| !epochs.iter().any(|v| v.epoch == *e))
            .collect();
        if !missing.is_empty() {
            actions.push(RetentionAction::CreateEpochs(missing));
        }
        let window = i64::try_from(self.config.pending_window.as_millis()).unwrap_or(i64::MAX);
        let mut blocked = Vec::new();
        let mut next_due: Option<Timestamp> = None;
        let mut note = |t: Timestamp| next_due = Some(next_due.map_or(t, |n| n.min(t)));
        for v in epochs {
            let (due_at, action) = match v.phase {
                EpochPhase::Active => {
                    let at = v
                        .deferred_until
                        .map_or(v.shred_after, |d| d.max(v.shred_after));
                    (at, RetentionAction::BeginShred(v.epoch))
                }
                EpochPhase::PendingDestruction => {
                    let since = v.pending_since.unwrap_or(v.shred_after);
                    (
                        since.plus_ms(window),
                        RetentionAction::CompleteShred(v.epoch),
                    )
                }
                EpochPhase::Destroyed => continue,
            };
            if wall < due_at {
                note(due_at);
            } else if clock == ClockVerdict::Trusted {
                actions.push(action);
            } else {
                blocked.push(v.epoch);
            }
        }
        // Tomorrow's epochs must exist before the day starts.
        note(Timestamp::start_of_day(wall.day() + 1));
        Plan {
            actions,
            clock,
            blocked,
            next_due,
        }
    }

    fn wanted_epochs(&self, wall: Timestamp, retention_days: &[u32]) -> Vec<u32> {
        let today = wall.day();
        let mut out: Vec<u32> = retention_days
            .iter()
            .flat_map(|d| {
                (0..=self.config.lookahead_days).map(move |o| today + i64::from(*d) + i64::from(o))
            })
            .filter_map(|e| u32::try_from(e).ok())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The epoch a recording started at `started_at` with `retention_days` belongs to: the UTC day
/// in which its retention ends. Shredded at the start of the following day, so a key lives at
/// most one day longer than its policy, never shorter.
pub fn epoch_for(started_at: Timestamp, retention_days: u32) -> Option<u32> {
    u32::try_from(started_at.plus_ms(i64::from(retention_days) * DAY_MS).day()).ok()
}

/// When an epoch's retention is over (start of the next UTC day).
pub fn shred_after(epoch: u32) -> Timestamp {
    Timestamp::start_of_day(i64::from(epoch) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    const T0: Timestamp = Timestamp::from_unix_ms(1_764_720_000_000); // 2025-12-03T00:00Z

    fn view(epoch: u32, phase: EpochPhase, pending_since: Option<Timestamp>) -> EpochView {
        EpochView {
            epoch,
            phase,
            shred_after: shred_after(epoch),
            pending_since,
            deferred_until: None,
        }
    }

    #[test]
    fn creates_epochs_ahead_for_each_policy() {
        let clock = ManualClock::new(T0);
        let mut s = RetentionScheduler::new(RetentionConfig {
            lookahead_days: 2,
            ..Default::default()
        });
        let plan = s.plan(
            clock.wall(),
            clock.mono(),
            &[view(20_425 + 30, EpochPhase::Active, None)],
            &[30, 90],
        );
        let today = 20_425;
        assert_eq!(T0.day(), today);
        assert_eq!(
            plan.actions,
            vec![RetentionAction::CreateEpochs(vec![
                today as u32 + 31,
                today as u32 + 32,
                today as u32 + 90,
                today as u32 + 91,
                today as u32 + 92
            ])]
        );
    }

    #[test]
    fn two_phase_shred_on_time_and_never_early() {
        let clock = ManualClock::new(T0);
        let mut s = RetentionScheduler::new(RetentionConfig::default());
        let e = T0.day() as u32; // expires at the end of today
        let active = [view(e, EpochPhase::Active, None)];
        let p = s.plan(clock.wall(), clock.mono(), &active, &[]);
        assert!(!p.actions.contains(&RetentionAction::BeginShred(e)));
        assert_eq!(p.next_due, Some(shred_after(e)));
        clock.advance(Duration::from_millis(86_400_000 - 1));
        assert!(
            !s.plan(clock.wall(), clock.mono(), &active, &[])
                .actions
                .contains(&RetentionAction::BeginShred(e))
        );
        clock.advance(Duration::from_millis(1));
        assert!(
            s.plan(clock.wall(), clock.mono(), &active, &[])
                .actions
                .contains(&RetentionAction::BeginShred(e))
        );
        let pending = [view(e, EpochPhase::PendingDestruction, Some(clock.wall()))];
        clock.advance(Duration::from_secs(3599));
        assert!(
            !s.plan(clock.wall(), clock.mono(), &pending, &[])
                .actions
                .contains(&RetentionAction::CompleteShred(e))
        );
        clock.advance(Duration::from_secs(1));
        assert!(
            s.plan(clock.wall(), clock.mono(), &pending, &[])
                .actions
                .contains(&RetentionAction::CompleteShred(e))
        );
    }

    #[test]
    fn forward_jump_blocks_shredding_until_confirm() {
        let clock = ManualClock::new(T0);
        let mut s = RetentionScheduler::new(RetentionConfig::default());
        let e = T0.day() as u32 + 10;
        let active = [view(e, EpochPhase::Active, None)];
        s.plan(clock.wall(), clock.mono(), &active, &[]);
        clock.jump_wall(20 * DAY_MS);
        let p = s.plan(clock.wall(), clock.mono(), &active, &[]);
        assert!(matches!(p.clock, ClockVerdict::Untrusted { .. }));
        assert_eq!(p.blocked, vec![e]);
        assert!(
            p.actions
                .iter()
                .any(|a| matches!(a, RetentionAction::Alert(ClockAlert::JumpedForward { .. })))
        );
        assert!(!p.actions.contains(&RetentionAction::BeginShred(e)));
        s.confirm_clock(clock.wall(), clock.mono());
        assert!(
            s.plan(clock.wall(), clock.mono(), &active, &[])
                .actions
                .contains(&RetentionAction::BeginShred(e))
        );
    }

    #[test]
    fn deferred_epoch_waits() {
        let clock = ManualClock::new(T0.plus_ms(5 * DAY_MS));
        let mut s = RetentionScheduler::new(RetentionConfig::default());
        let e = T0.day() as u32;
        let mut v = view(e, EpochPhase::Active, None);
        v.deferred_until = Some(clock.wall().plus_ms(1000));
        let p = s.plan(clock.wall(), clock.mono(), &[v.clone()], &[]);
        assert!(!p.actions.contains(&RetentionAction::BeginShred(e)));
        clock.advance(Duration::from_secs(1));
        assert!(
            s.plan(clock.wall(), clock.mono(), &[v], &[])
                .actions
                .contains(&RetentionAction::BeginShred(e))
        );
    }

    #[test]
    fn epoch_arithmetic() {
        assert_eq!(epoch_for(T0, 30), Some(T0.day() as u32 + 30));
        assert_eq!(
            epoch_for(T0.plus_ms(DAY_MS - 1), 1),
            Some(T0.day() as u32 + 1)
        );
        assert_eq!(shred_after(T0.day() as u32), T0.plus_ms(DAY_MS));
    }
}
