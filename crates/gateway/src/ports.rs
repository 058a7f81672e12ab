//! The RTP port pool: even ports for RTP, the odd port above for RTCP (RFC 3550 §11).
//!
//! Ports are handed out least-recently-used first, so a port freed by one call is not
//! reused at once and stray late packets of the old call do not reach the new one.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use std::net::UdpSocket;

use crate::error::GatewayError;

/// A shared pool of RTP/RTCP port pairs.
#[derive(Clone)]
pub struct PortPool {
    inner: Arc<Mutex<PoolInner>>,
    bind: IpAddr,
    min: u16,
    max: u16,
}

struct PoolInner {
    free: VecDeque<u16>,
    in_use: usize,
}

/// One bound pair (non-blocking sockets, read by a media thread); the port returns to the
/// pool when this is dropped.
pub struct RtpPair {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    pub port: u16,
    pool: Arc<Mutex<PoolInner>>,
}

impl Drop for RtpPair {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.pool.lock() {
            inner.free.push_back(self.port);
            inner.in_use = inner.in_use.saturating_sub(1);
        }
    }
}

impl RtpPair {
    pub fn local_rtp(&self) -> SocketAddr {
        self.rtp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::new([0, 0, 0, 0].into(), self.port))
    }
}

impl PortPool {
    /// A pool over the even ports of `min..=max` whose odd partner is also in range.
    pub fn new(bind: IpAddr, min: u16, max: u16) -> Self {
        let free = (min..max).filter(|p| p % 2 == 0).collect();
        Self {
            inner: Arc::new(Mutex::new(PoolInner { free, in_use: 0 })),
            bind,
            min,
            max,
        }
    }

    /// Pairs not in use.
    pub fn available(&self) -> usize {
        self.inner.lock().map(|i| i.free.len()).unwrap_or(0)
    }

    /// Binds the next free pair. Ports held by other processes are skipped (and kept in the
    /// pool for later); the error comes only when every pair was tried.
    pub fn allocate(&self) -> Result<RtpPair, GatewayError> {
        let attempts = self.available();
        for _ in 0..attempts {
            let port = {
                let mut inner = self.inner.lock().map_err(|_| self.exhausted(0))?;
                match inner.free.pop_front() {
                    Some(p) => {
                        inner.in_use += 1;
                        p
                    }
                    None => break,
                }
            };
            match (
                bind_udp(self.bind, port),
                bind_udp(self.bind, port.wrapping_add(1)),
            ) {
                (Ok(rtp), Ok(rtcp)) => {
                    return Ok(RtpPair {
                        rtp,
                        rtcp,
                        port,
                        pool: self.inner.clone(),
                    });
                }
                _ => {
                    if let Ok(mut inner) = self.inner.lock() {
                        inner.free.push_back(port);
                        inner.in_use = inner.in_use.saturating_sub(1);
                    }
                }
            }
        }
        let in_use = self.inner.lock().map(|i| i.in_use).unwrap_or(0);
        Err(self.exhausted(in_use))
    }

    fn exhausted(&self, in_use: usize) -> GatewayError {
        GatewayError::PortsExhausted {
            min: self.min,
            max: self.max,
            in_use,
        }
    }
}

fn bind_udp(ip: IpAddr, port: u16) -> std::io::Result<UdpSocket> {
    let sock = UdpSocket::bind(SocketAddr::new(ip, port))?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lo() -> IpAddr {
        IpAddr::from([127, 0, 0, 1])
    }

    #[tokio::test]
    async fn pairs_are_even_odd_and_return_to_the_back_of_the_pool() {
        let pool = PortPool::new(lo(), 41000, 41007);
        assert_eq!(pool.available(), 4);
        let a = pool.allocate().unwrap();
        assert_eq!(a.port % 2, 0);
        assert_eq!(a.rtcp.local_addr().unwrap().port(), a.port + 1);
        let first = a.port;
        drop(a);
        let b = pool.allocate().unwrap();
        assert_ne!(b.port, first, "a just-freed port is reused last");
        assert_eq!(pool.available(), 3);
    }

    #[tokio::test]
    async fn exhaustion_is_an_error_not_a_panic() {
        let pool = PortPool::new(lo(), 41010, 41013);
        let _a = pool.allocate().unwrap();
        let _b = pool.allocate().unwrap();
        let err = pool.allocate().err().unwrap();
        assert!(
            matches!(err, GatewayError::PortsExhausted { in_use: 2, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn port_taken_by_another_process_is_skipped() {
        let squatter = std::net::UdpSocket::bind((lo(), 41020)).unwrap();
        let pool = PortPool::new(lo(), 41020, 41023);
        let a = pool.allocate().unwrap();
        assert_eq!(a.port, 41022);
        drop(squatter);
    }
}
