//! The SIP side of the loop: bytes from the transports into the `sip` Endpoint (transactions,
//! RFC 3261 §17), its events into the call core's `SipEvent`s, the call core's `SipCommand`s
//! into Endpoint actions, and the Endpoint's transmits out through the transports.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use callseal_call::{Now, ServerTx, SipCommand, SipEvent, TransactionFailure};
use callseal_sip::{
    ClientTxId, Endpoint, EndpointConfig, Event, ServerTxId, StreamItem, Transport, TxId,
};

use crate::metrics::Metrics;
use crate::transport::{self, Inbound, Transports};

/// The Endpoint and the transports it sends through.
pub(crate) struct SipLayer {
    ep: Endpoint,
    transports: Transports,
    events: VecDeque<SipEvent>,
    metrics: Arc<Metrics>,
    /// Our INVITE client transactions by top-Via branch, for the call core's CANCELs.
    invites: HashMap<String, ClientTxId>,
}

fn wire(t: Transport) -> Option<transport::Transport> {
    match t {
        Transport::Udp => Some(transport::Transport::Udp),
        Transport::Tcp => Some(transport::Transport::Tcp),
        _ => None,
    }
}

impl SipLayer {
    pub(crate) fn new(transports: Transports, seed: [u8; 32], metrics: Arc<Metrics>) -> Self {
        let mut s = [0u8; 8];
        s.copy_from_slice(&seed[..8]);
        Self {
            ep: Endpoint::new(EndpointConfig::default(), u64::from_le_bytes(s)),
            transports,
            events: VecDeque::new(),
            metrics,
            invites: HashMap::new(),
        }
    }

    pub(crate) fn handle_inbound(&mut self, now: Now, inbound: Inbound) {
        self.metrics.sip_messages_in.fetch_add(1, Ordering::Relaxed);
        match inbound {
            Inbound::Datagram { from, bytes, .. } => {
                self.ep
                    .handle_datagram(now.instant, Transport::Udp, from, &bytes)
            }
            Inbound::Stream {
                from,
                item: StreamItem::Message(m),
                ..
            } => {
                self.ep
                    .handle_stream_message(now.instant, Transport::Tcp, from, m);
            }
            Inbound::Stream { .. } => {}
            Inbound::StreamError { from, error } => {
                // RFC 3261 §18.3: a framing error on a stream leaves no way to resynchronise;
                // the transport has closed the connection.
                self.metrics
                    .sip_parse_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(%from, "SIP over TCP: {error}; connection closed");
            }
        }
        self.collect();
    }

    pub(crate) fn handle_timeout(&mut self, now: Now) {
        self.ep.handle_timeout(now.instant);
        self.collect();
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.ep.poll_timeout()
    }

    pub(crate) fn poll_event(&mut self) -> Option<SipEvent> {
        self.collect();
        self.events.pop_front()
    }

    pub(crate) fn has_transmits(&self) -> bool {
        false
    }

    /// Sends everything the Endpoint queued; a failed send is reported back to it.
    pub(crate) async fn flush(&mut self) {
        while let Some(t) = self.ep.poll_transmit() {
            let sent = match wire(t.transport) {
                Some(w) => self.transports.send(w, t.destination, t.bytes).await,
                None => Err(std::io::Error::other(
                    "TLS transport is not enabled on this gateway",
                )),
            };
            if let Err(e) = sent {
                tracing::info!(to = %t.destination, "SIP send failed: {e}");
                self.ep
                    .handle_transport_error(Instant::now(), t.transport, t.destination);
            }
        }
        self.collect();
    }

    /// Executes one SIP command of the call core.
    pub(crate) fn command(&mut self, now: Now, cmd: SipCommand) {
        let result = match cmd {
            SipCommand::Respond { tx, response } => {
                self.ep.respond(now.instant, ServerTxId(tx.0), response)
            }
            SipCommand::Request {
                request,
                destination,
            } => {
                let invite = request.method() == Some(&callseal_sip::Method::Invite);
                let branch = request
                    .headers
                    .top_via()
                    .and_then(|v| v.branch())
                    .map(str::to_owned);
                self.ep
                    .send_request(now.instant, request, Transport::Udp, destination)
                    .map(|tx| {
                        if let (true, Some(b)) = (invite, branch) {
                            self.invites.insert(b, tx);
                        }
                    })
            }
            SipCommand::Ack {
                request,
                destination,
            } => {
                self.ep
                    .send_stateless(now.instant, &request, Transport::Udp, destination);
                Ok(())
            }
            SipCommand::Cancel { invite_branch, .. } => match self.invites.get(&invite_branch) {
                // RFC 3261 §9.1: the CANCEL is built from the INVITE by the transaction layer.
                Some(&tx) => self.ep.cancel(now.instant, tx, None).map(|_| ()),
                None => {
                    tracing::debug!("CANCEL for an INVITE that is no longer pending");
                    Ok(())
                }
            },
            other => {
                tracing::warn!("SIP command not executed by this gateway version: {other:?}");
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::warn!("SIP command refused by the transaction layer: {e}");
        }
        self.collect();
    }

    fn collect(&mut self) {
        while let Some(ev) = self.ep.poll_event() {
            let mapped = match ev {
                Event::Request {
                    tx,
                    request,
                    source,
                    ..
                } => Some(SipEvent::Request {
                    tx: Some(ServerTx(tx.0)),
                    request,
                    source,
                }),
                Event::Ack {
                    request, source, ..
                } => Some(SipEvent::Request {
                    tx: None,
                    request,
                    source,
                }),
                Event::Cancelled { invite_tx, .. } => Some(SipEvent::Cancelled {
                    tx: ServerTx(invite_tx.0),
                }),
                Event::Response { tx, response } => {
                    if response.status().is_some_and(|s| s.is_final()) {
                        self.invites.retain(|_, t| *t != tx);
                    }
                    Some(SipEvent::Response { response })
                }
                Event::AckTimeout { tx } => Some(SipEvent::AckTimeout { tx: ServerTx(tx.0) }),
                Event::Timeout {
                    tx: TxId::Client(tx),
                    method,
                    branch,
                } => {
                    self.invites.retain(|_, t| *t != tx);
                    Some(SipEvent::RequestFailed {
                        branch,
                        method,
                        failure: TransactionFailure::Timeout,
                    })
                }
                Event::TransportError {
                    tx: TxId::Client(_),
                    method,
                    branch,
                } => Some(SipEvent::RequestFailed {
                    branch,
                    method,
                    failure: TransactionFailure::Transport,
                }),
                Event::Malformed { source, error, .. } => {
                    self.metrics
                        .sip_parse_errors
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%source, "malformed SIP: {error}");
                    None
                }
                other => {
                    tracing::debug!("SIP: {other:?}");
                    None
                }
            };
            if let Some(m) = mapped {
                self.events.push_back(m);
            }
        }
    }
}
