//! Message handling of the caller and the PBX stand-in: reads everything queued on
//! both SIP sockets and answers it.

use std::net::{SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::{Driver, MAX_TRIES, Plan, RETRANSMIT, UacState, UasLeg, digit_burst};
use crate::error::BenchError;
use crate::generator::SocketPool;
use crate::sip::{self, Msg, Request};

/// At most this many datagrams per socket per call, so one busy socket cannot starve the other.
const DRAIN: usize = 512;
/// RFC 3261 §17.1.1.1 timer values.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// Sends of a 2xx before the stand-in gives up (64·T1 = 32 s is the RFC's bound;
/// the setup phase ends sooner).
const ANSWER_SENDS: u32 = 8;

impl Driver {
    /// Handles queued SIP; returns true if a call was completed or failed.
    pub(super) fn pump(&mut self, plan: &Plan, pool: &SocketPool) -> Result<bool, BenchError> {
        let mut progress = false;
        for _ in 0..DRAIN {
            let Ok((n, from)) = self.uac.recv_from(&mut self.buf) else {
                break;
            };
            let bytes = self.buf[..n].to_vec();
            if let Some(m) = Msg::parse(&bytes) {
                progress |= self.on_uac(plan, pool, &m, from)?;
            }
        }
        for _ in 0..DRAIN {
            let Ok((n, from)) = self.uas.recv_from(&mut self.buf) else {
                break;
            };
            let bytes = self.buf[..n].to_vec();
            if let Some(m) = Msg::parse(&bytes) {
                progress |= self.on_uas(plan, pool, &m, from)?;
            }
        }
        Ok(progress)
    }

    pub(super) fn retransmit_invites(
        &mut self,
        plan: &Plan,
        pool: &SocketPool,
    ) -> Result<(), BenchError> {
        let now = Instant::now();
        for i in 0..self.calls.len() {
            if let UacState::Inviting { last, tries } = self.calls[i].state {
                if now.duration_since(last) < RETRANSMIT {
                    continue;
                }
                if tries >= MAX_TRIES {
                    continue; // counted as "no answer" when setup ends
                }
                self.calls[i].state = UacState::Inviting {
                    last: now,
                    tries: tries + 1,
                };
                self.send_invite(plan, pool, i)?;
            }
        }
        Ok(())
    }

    /// The PBX stand-in resends each unacknowledged 2xx, T1 doubling up to T2
    /// (RFC 3261 §13.3.1.4): a stateful proxy forwards the 2xx once and leaves its
    /// reliability to the UAS, so a datagram lost under load would otherwise lose the call.
    pub(super) fn retransmit_answers(&mut self) {
        let now = Instant::now();
        for leg in self.legs.values_mut() {
            if leg.acked || leg.sends >= ANSWER_SENDS {
                continue;
            }
            let interval = (T1 * 2u32.pow(leg.sends - 1)).min(T2);
            if now.duration_since(leg.last) >= interval {
                let _ = self.uas.send_to(leg.answer.as_bytes(), leg.peer);
                leg.last = now;
                leg.sends += 1;
            }
        }
    }

    pub(super) fn send_bye(&self, plan: &Plan, i: usize) -> Result<(), BenchError> {
        self.in_dialog(plan, i, "BYE", 2, &format!("{}-{i}-bye", self.run))
    }

    /// ACK for 2xx and BYE: a new transaction inside the dialog, routed by the
    /// route set (RFC 3261 §12.2.1.1). It is always sent to the system under test,
    /// the only next hop on this loopback bench.
    fn in_dialog(
        &self,
        plan: &Plan,
        i: usize,
        method: &str,
        cseq: u32,
        branch: &str,
    ) -> Result<(), BenchError> {
        let c = &self.calls[i];
        let req = Request {
            method,
            uri: &c.target,
            via: self.uac_addr()?,
            branch,
            from: &c.from,
            to: &c.to,
            call_id: &c.call_id,
            cseq,
            routes: &c.routes,
            contact: None,
            sdp: None,
        };
        let _ = self.uac.send_to(req.render().as_bytes(), plan.sut);
        Ok(())
    }

    fn on_uac(
        &mut self,
        plan: &Plan,
        pool: &SocketPool,
        m: &Msg<'_>,
        from: SocketAddr,
    ) -> Result<bool, BenchError> {
        if let Some(method) = m.method() {
            // The system hung up or probes us: answer, and note a remote hang-up.
            if method != "ACK" {
                let out = sip::response(m, 200, "OK", "uac", None, None);
                let _ = self.uac.send_to(out.as_bytes(), from);
            }
            if method == "BYE"
                && let Some(&i) = m.call_id().and_then(|id| self.by_id.get(id))
            {
                self.calls[i].state = UacState::Ended;
            }
            return Ok(false);
        }
        let (Some(code), Some(&i)) = (m.status(), m.call_id().and_then(|id| self.by_id.get(id)))
        else {
            return Ok(false);
        };
        match (m.cseq_method(), code) {
            (Some("INVITE"), 100..=199) => Ok(false),
            (Some("INVITE"), 200..=299) => {
                let first = matches!(self.calls[i].state, UacState::Inviting { .. });
                if first {
                    let c = &mut self.calls[i];
                    c.to = m.get("To").unwrap_or(&c.to).to_string();
                    if let Some(contact) = m.get("Contact") {
                        c.target = sip::uri(contact).to_string();
                    }
                    // RFC 3261 §12.1.2: the UAC's route set is the Record-Route reversed.
                    c.routes = m
                        .all("Record-Route")
                        .into_iter()
                        .rev()
                        .map(str::to_string)
                        .collect();
                    c.media = sip::sdp_audio(m.body);
                    c.state = UacState::Up;
                }
                // Every 2xx (also retransmitted ones) is acknowledged (§13.2.2.4).
                self.in_dialog(plan, i, "ACK", 1, &format!("{}-{i}-ack", self.run))?;
                if first && let (Some(d), Some(media)) = (plan.digit, self.calls[i].media) {
                    digit_burst(pool, self.calls[i].sock, media, d, i)?;
                }
                Ok(first)
            }
            (Some("INVITE"), _) => {
                // Non-2xx: ACK hop by hop with the INVITE's branch (§17.1.1.3).
                let first = matches!(self.calls[i].state, UacState::Inviting { .. });
                let c = &self.calls[i];
                let to = m.get("To").unwrap_or(&c.to).to_string();
                let req = Request {
                    method: "ACK",
                    uri: &format!("sip:service@{}", plan.sut),
                    via: self.uac_addr()?,
                    branch: &format!("{}-{i}-inv", self.run),
                    from: &c.from,
                    to: &to,
                    call_id: &c.call_id,
                    cseq: 1,
                    routes: &[],
                    contact: None,
                    sdp: None,
                };
                let _ = self.uac.send_to(req.render().as_bytes(), plan.sut);
                if first {
                    self.calls[i].state = UacState::Failed;
                    *self.failed.entry(code).or_default() += 1;
                }
                Ok(first)
            }
            (Some("BYE"), 200..=699) => {
                if matches!(self.calls[i].state, UacState::Byeing { .. }) {
                    self.calls[i].state = UacState::Ended;
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    fn on_uas(
        &mut self,
        _plan: &Plan,
        pool: &SocketPool,
        m: &Msg<'_>,
        from: SocketAddr,
    ) -> Result<bool, BenchError> {
        let (Some(method), Some(id)) = (m.method(), m.call_id()) else {
            return Ok(false); // responses: the stand-in sends no requests
        };
        let reply = |s: &str| {
            let _ = self.uas.send_to(s.as_bytes(), from);
        };
        match method {
            "INVITE" => {
                if let Some(leg) = self.legs.get(id) {
                    reply(&leg.answer); // retransmission: same answer
                    return Ok(false);
                }
                let j = self.leg_order.len();
                let sock = pool.len() / 2 + j % (pool.len() / 2).max(1);
                let local: SocketAddrV4 = pool.addr(sock)?;
                let sdp = sip::sdp(local, j as u64 + 1_000_000);
                let tag = format!("p{j}");
                let contact = self.pbx_addr()?;
                let answer = sip::response(m, 200, "OK", &tag, Some(contact), Some(&sdp));
                reply(&answer);
                let leg = UasLeg {
                    tag,
                    sock,
                    media: sip::sdp_audio(m.body),
                    answer,
                    peer: from,
                    acked: false,
                    last: Instant::now(),
                    sends: 1,
                };
                self.legs.insert(id.to_string(), leg);
                self.leg_order.push(id.to_string());
                Ok(false)
            }
            "ACK" => match self.legs.get_mut(id) {
                Some(leg) if !leg.acked => {
                    leg.acked = true;
                    Ok(true)
                }
                _ => Ok(false),
            },
            _ => {
                let tag = self
                    .legs
                    .get(id)
                    .map_or("pbx", |l| l.tag.as_str())
                    .to_string();
                reply(&sip::response(m, 200, "OK", &tag, None, None));
                Ok(false)
            }
        }
    }
}
