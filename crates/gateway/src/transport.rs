//! SIP transports (RFC 3261 §18): UDP sockets and TCP listeners/connections.
//!
//! This module moves bytes only. UDP datagrams go up raw (the `sip` crate parses them); TCP
//! bytes go through the `sip` crate's `StreamFramer`, one per connection, and framed messages
//! go up. Outgoing messages to an address with an open TCP connection reuse it (§18.2.2:
//! responses go back over the connection the request came on); otherwise a connection is
//! opened (§18.1.1). Everything SIP-specific beyond framing happens in the cores.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use callseal_sip::{Limits, StreamFramer, StreamItem};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use crate::error::GatewayError;

/// Which transport a message came on or goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Something that arrived from the network.
#[derive(Debug)]
pub enum Inbound {
    /// One UDP datagram, unparsed.
    Datagram {
        local: SocketAddr,
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    /// One framed item from a TCP connection.
    Stream {
        local: SocketAddr,
        from: SocketAddr,
        item: StreamItem,
    },
    /// A TCP connection hit a framing error: `reply` (if any) was sent and it was closed.
    StreamError {
        from: SocketAddr,
        error: callseal_sip::Error,
    },
}

/// The bound SIP sockets and the table of open TCP connections.
#[derive(Clone)]
pub struct Transports {
    udp: Vec<Arc<UdpSocket>>,
    tcp_local: Vec<SocketAddr>,
    conns: Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>,
    inbound: mpsc::Sender<Inbound>,
    limits: Arc<LimitsCfg>,
}

struct LimitsCfg {
    max_message_bytes: usize,
}

impl Transports {
    /// Binds every configured socket and starts their reader tasks.
    pub async fn bind(
        udp: &[SocketAddr],
        tcp: &[SocketAddr],
        max_message_bytes: usize,
        inbound: mpsc::Sender<Inbound>,
    ) -> Result<Self, GatewayError> {
        let mut this = Self {
            udp: Vec::new(),
            tcp_local: Vec::new(),
            conns: Arc::new(Mutex::new(HashMap::new())),
            inbound,
            limits: Arc::new(LimitsCfg { max_message_bytes }),
        };
        for &addr in udp {
            let sock = UdpSocket::bind(addr)
                .await
                .map_err(|source| GatewayError::Bind {
                    what: "SIP (UDP)",
                    addr,
                    source,
                })?;
            enlarge_receive_buffer(&sock, addr);
            let sock = Arc::new(sock);
            let local = sock.local_addr().unwrap_or(addr);
            tokio::spawn(udp_reader(sock.clone(), local, this.inbound.clone()));
            this.udp.push(sock);
        }
        for &addr in tcp {
            // Port 0 for TCP means "the same port UDP got", so both transports share one address.
            let addr = match (
                addr.port(),
                this.udp.first().and_then(|u| u.local_addr().ok()),
            ) {
                (0, Some(u)) if u.ip() == addr.ip() => u,
                _ => addr,
            };
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| GatewayError::Bind {
                    what: "SIP (TCP)",
                    addr,
                    source,
                })?;
            let local = listener.local_addr().unwrap_or(addr);
            this.tcp_local.push(local);
            tokio::spawn(tcp_acceptor(listener, this.clone()));
        }
        Ok(this)
    }

    /// The first UDP address (else TCP), for Via/Contact and tests.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.udp
            .first()
            .and_then(|s| s.local_addr().ok())
            .or_else(|| self.tcp_local.first().copied())
    }

    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.tcp_local.clone()
    }

    /// Sends `bytes` to `to`. UDP goes out of the first socket of the same family; TCP reuses
    /// or opens a connection. Errors are returned for the core to treat as a transport error.
    pub async fn send(
        &self,
        transport: Transport,
        to: SocketAddr,
        bytes: Vec<u8>,
    ) -> std::io::Result<()> {
        match transport {
            Transport::Udp => {
                let sock = self
                    .udp
                    .iter()
                    .find(|s| {
                        s.local_addr()
                            .map(|a| a.is_ipv4() == to.is_ipv4())
                            .unwrap_or(false)
                    })
                    .ok_or_else(|| {
                        std::io::Error::other(format!("no UDP socket of the family of {to}"))
                    })?;
                sock.send_to(&bytes, to).await.map(|_| ())
            }
            Transport::Tcp => {
                let existing = self.conns.lock().ok().and_then(|c| c.get(&to).cloned());
                let tx = match existing {
                    Some(tx) if !tx.is_closed() => tx,
                    _ => {
                        let stream = tokio::time::timeout(
                            std::time::Duration::from_secs(5),
                            TcpStream::connect(to),
                        )
                        .await
                        .map_err(|_| {
                            std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                format!("TCP connect to {to}"),
                            )
                        })??;
                        self.adopt(stream, to)
                    }
                };
                tx.send(bytes)
                    .await
                    .map_err(|_| std::io::Error::other(format!("TCP connection to {to} closed")))
            }
        }
    }

    /// Registers a connection and starts its reader and writer tasks.
    fn adopt(&self, stream: TcpStream, peer: SocketAddr) -> mpsc::Sender<Vec<u8>> {
        let local = stream.local_addr().unwrap_or(peer);
        let (mut rd, mut wr) = stream.into_split();
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
        if let Ok(mut c) = self.conns.lock() {
            c.insert(peer, tx.clone());
        }
        tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                if wr.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            let _ = wr.shutdown().await;
        });
        let inbound = self.inbound.clone();
        let conns = self.conns.clone();
        let max = self.limits.max_message_bytes;
        let reply_tx = tx.clone();
        tokio::spawn(async move {
            let mut framer = StreamFramer::new(Limits {
                max_message_size: max,
                ..Limits::default()
            });
            let mut buf = vec![0u8; 16 * 1024];
            'conn: loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                framer.push(buf.get(..n).unwrap_or_default());
                loop {
                    match framer.next_item() {
                        Ok(Some(StreamItem::KeepAlive)) => {
                            // RFC 5626 §3.5.1: answer a CRLFCRLF ping with one CRLF pong.
                            let _ = reply_tx.send(b"\r\n".to_vec()).await;
                        }
                        Ok(Some(item)) => {
                            if inbound
                                .send(Inbound::Stream {
                                    local,
                                    from: peer,
                                    item,
                                })
                                .await
                                .is_err()
                            {
                                break 'conn;
                            }
                        }
                        Ok(None) => break,
                        Err(error) => {
                            let _ = inbound
                                .send(Inbound::StreamError { from: peer, error })
                                .await;
                            break 'conn;
                        }
                    }
                }
            }
            if let Ok(mut c) = conns.lock() {
                c.remove(&peer);
            }
        });
        tx
    }

    /// Sends `bytes` on the connection from `peer` (if open) and closes it: used for the 400
    /// that precedes closing a connection with a framing error (case 004, 011).
    pub async fn reply_and_close(&self, peer: SocketAddr, bytes: Vec<u8>) {
        let tx = self.conns.lock().ok().and_then(|mut c| c.remove(&peer));
        if let Some(tx) = tx {
            let _ = tx.send(bytes).await;
            // Dropping the last sender ends the writer task, which shuts the socket down.
        }
    }
}

/// Receive buffer asked for on SIP UDP sockets: room for a burst of a few thousand requests
/// (every caller hanging up at once, a PBX failing over) while the loop catches up. The
/// kernel's default (~200 KiB) holds ~150 small datagrams and drops the rest; they come back
/// only with the senders' retransmissions, seconds later. Linux caps it at `net.core.rmem_max`.
const SIP_UDP_RCVBUF: usize = 4 << 20;

fn enlarge_receive_buffer(sock: &UdpSocket, addr: SocketAddr) {
    use rustix::net::sockopt;
    if let Err(e) = sockopt::set_socket_recv_buffer_size(sock, SIP_UDP_RCVBUF) {
        tracing::warn!(%addr, "SIP (UDP): cannot enlarge the receive buffer ({e}); bursts of requests may be dropped until retransmitted");
        return;
    }
    // Linux reports twice what was set (the other half is its bookkeeping).
    if let Ok(got) = sockopt::socket_recv_buffer_size(sock).map(|b| b / 2) {
        tracing::debug!(%addr, bytes = got, "SIP (UDP) receive buffer");
        if got < SIP_UDP_RCVBUF {
            tracing::info!(%addr, bytes = got, wanted = SIP_UDP_RCVBUF, "SIP (UDP): the receive buffer is capped by net.core.rmem_max; raise it for large bursts of requests");
        }
    }
}

async fn udp_reader(sock: Arc<UdpSocket>, local: SocketAddr, inbound: mpsc::Sender<Inbound>) {
    // 64 KiB: the largest UDP payload; the sip parser enforces its own limit.
    let mut buf = vec![0u8; 65_535];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let bytes = buf.get(..n).unwrap_or_default().to_vec();
                if inbound
                    .send(Inbound::Datagram { local, from, bytes })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            // ICMP port unreachable surfaces as ECONNREFUSED on Linux: not fatal for a server socket.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
            Err(e) => {
                tracing::error!(%local, "SIP UDP socket failed: {e}");
                return;
            }
        }
    }
}

async fn tcp_acceptor(listener: TcpListener, transports: Transports) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                transports.adopt(stream, peer);
            }
            Err(e) => {
                // EMFILE and friends: back off briefly rather than spin.
                tracing::warn!("SIP TCP accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn bound() -> (Transports, mpsc::Receiver<Inbound>) {
        let (tx, rx) = mpsc::channel(16);
        let lo: SocketAddr = "127.0.0.1:0".parse().unwrap();
        (
            Transports::bind(&[lo], &[lo], 65_536, tx).await.unwrap(),
            rx,
        )
    }

    const OPTIONS: &[u8] = b"OPTIONS sip:gw@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK1\r\n\
From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:gw@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

    #[tokio::test]
    async fn udp_datagram_arrives_raw_with_its_source() {
        let (t, mut rx) = bound().await;
        let gw = t.udp_addrs()[0];
        assert_eq!(t.tcp_addrs()[0], gw, "TCP shares the UDP port");
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        peer.send_to(b"hello", gw).await.unwrap();
        match rx.recv().await.unwrap() {
            Inbound::Datagram { from, bytes, .. } => {
                assert_eq!(from, peer.local_addr().unwrap());
                assert_eq!(bytes, b"hello");
            }
            other => panic!("{other:?}"),
        }
        t.send(Transport::Udp, peer.local_addr().unwrap(), b"back".to_vec())
            .await
            .unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = peer.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"back");
    }

    #[tokio::test]
    async fn tcp_messages_are_framed_across_splits_and_replies_reuse_the_connection() {
        let (t, mut rx) = bound().await;
        let mut peer = TcpStream::connect(t.tcp_addrs()[0]).await.unwrap();
        // Two messages, split mid-header, plus a keep-alive in between.
        let mut all = OPTIONS.to_vec();
        all.extend_from_slice(b"\r\n\r\n");
        all.extend_from_slice(OPTIONS);
        peer.write_all(&all[..30]).await.unwrap();
        peer.flush().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        peer.write_all(&all[30..]).await.unwrap();
        let mut from_addr = None;
        for _ in 0..2 {
            match rx.recv().await.unwrap() {
                Inbound::Stream {
                    from,
                    item: StreamItem::Message(m),
                    ..
                } => {
                    assert!(m.is_request());
                    from_addr = Some(from);
                }
                other => panic!("{other:?}"),
            }
        }
        // The keep-alive was answered with CRLF; a reply to the peer goes over the same connection.
        t.send(
            Transport::Tcp,
            from_addr.unwrap(),
            b"SIP/2.0 200 OK\r\n".to_vec(),
        )
        .await
        .unwrap();
        let mut got = Vec::new();
        while !got.ends_with(b"OK\r\n") {
            let mut b = [0u8; 64];
            let n = peer.read(&mut b).await.unwrap();
            got.extend_from_slice(&b[..n]);
        }
        assert_eq!(got, b"\r\nSIP/2.0 200 OK\r\n");
    }

    #[tokio::test]
    async fn tcp_framing_error_is_reported() {
        let (t, mut rx) = bound().await;
        let mut peer = TcpStream::connect(t.tcp_addrs()[0]).await.unwrap();
        let bad =
            String::from_utf8_lossy(OPTIONS).replace("Content-Length: 0", "Content-Length: -5");
        peer.write_all(bad.as_bytes()).await.unwrap();
        assert!(matches!(
            rx.recv().await.unwrap(),
            Inbound::StreamError { .. }
        ));
    }
}
