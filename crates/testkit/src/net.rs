//! Free loopback ports for peers (tests never use fixed ports such as 5060).

use std::net::{SocketAddr, TcpListener, UdpSocket};

/// A UDP port on 127.0.0.1 that is free for both UDP and TCP right now, with `extra` more
/// UDP ports free at `port + 2, port + 4, …` (sipp binds `-mp` and `-mp + 2`). The check is
/// racy by nature; ports are drawn from the kernel's ephemeral range, so collisions between
/// concurrent tests are rare and show as a clear bind error.
pub fn free_port(extra: u16) -> u16 {
    for _ in 0..200 {
        let Ok(probe) = UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(SocketAddr::V4(a)) = probe.local_addr() else {
            continue;
        };
        let port = a.port();
        if port % 2 != 0 || port > 65_000 {
            continue;
        }
        let tcp_ok = TcpListener::bind(("127.0.0.1", port)).is_ok();
        let others_ok = (1..=extra).all(|i| {
            let p = port + 2 * i;
            UdpSocket::bind(("127.0.0.1", p)).is_ok()
                && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok()
        });
        let rtcp_ok = UdpSocket::bind(("127.0.0.1", port + 1)).is_ok();
        if tcp_ok && others_ok && rtcp_ok {
            return port;
        }
    }
    // Practically unreachable on a machine with free ephemeral ports.
    40_000
}

/// An even-started range of `len` ports of which none is bound right now (for the gateway's
/// RTP port pool in tests). Successive calls in one process get disjoint ranges.
pub fn free_range(len: u16) -> (u16, u16) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let len = len + len % 2;
    // Spread processes apart by pid, calls within a process by a counter; stay below the
    // kernel's ephemeral range (32768+) where other tests' sockets come from.
    let slots = u32::from(12_000 / len);
    let base = std::process::id() % slots;
    for _ in 0..slots {
        let slot = (base + NEXT.fetch_add(1, Ordering::Relaxed)) % slots;
        let start = 20_000 + u16::try_from(slot).unwrap_or(0) * len;
        if (start..start + len).all(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok()) {
            return (start, start + len - 1);
        }
    }
    (20_000, 20_000 + len - 1)
}
