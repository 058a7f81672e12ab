//! PLACEHOLDER until the sip Endpoint lands.
use crate::metrics::Metrics;
use crate::transport::{Inbound, Transports};
use callseal_call::{Now, SipCommand, SipEvent};
use std::sync::Arc;
use std::time::Instant;
pub(crate) struct SipLayer {
    _t: Transports,
}
impl SipLayer {
    pub fn new(t: Transports, _seed: [u8; 32], _m: Arc<Metrics>) -> Self {
        Self { _t: t }
    }
    pub fn handle_inbound(&mut self, _now: Now, _i: Inbound) {}
    pub fn handle_timeout(&mut self, _now: Now) {}
    pub async fn flush(&mut self) {}
    pub fn poll_event(&mut self) -> Option<SipEvent> {
        None
    }
    pub fn has_transmits(&self) -> bool {
        false
    }
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    pub fn command(&mut self, _now: Now, _c: SipCommand) {}
}
