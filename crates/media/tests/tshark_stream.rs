//! The outgoing stream checked by an independent RTP analyser: the session's packets towards
//! the caller (prompt, relay from one upstream SSRC, a transfer to another, a second prompt,
//! relay again) are written to a pcap on simulated time and analysed by tshark's RTP stream
//! statistics, which flag sequence errors and timestamp jumps. A control stream with the bad
//! relay of field case 026 must be flagged, so the check can fail. Needs the Debian package
//! `tshark`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use callseal_media::{Codec, Leg, MediaSession, Playback, Prompt};
use common::*;

/// Writes `packets` (time since start, RTP datagram) as IPv4/UDP 127.0.0.1:40000 →
/// 127.0.0.2:42000 in a pcap with raw-IP link type.
fn write_pcap(path: &Path, packets: &[(Duration, Vec<u8>)]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    for word in [0u32, 0, 65_535, 101] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    for (at, rtp) in packets {
        let udp_len = u16::try_from(8 + rtp.len()).unwrap();
        let total = 20 + udp_len;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2]);
        let mut sum: u32 = ip
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let checksum = !u16::try_from(sum).unwrap();
        ip[10..12].copy_from_slice(&checksum.to_be_bytes());
        let mut frame = ip;
        frame.extend_from_slice(&40_000u16.to_be_bytes());
        frame.extend_from_slice(&42_000u16.to_be_bytes());
        frame.extend_from_slice(&udp_len.to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(rtp);
        let secs = 1_700_000_000 + u32::try_from(at.as_secs()).unwrap();
        out.extend_from_slice(&secs.to_le_bytes());
        out.extend_from_slice(&at.subsec_micros().to_le_bytes());
        let len = u32::try_from(frame.len()).unwrap();
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&frame);
    }
    std::fs::write(path, out).unwrap();
}

/// tshark's stream lines: (SSRC as printed, lost column, problem flagged).
fn analyse(path: &Path) -> Vec<(String, String, bool)> {
    let output = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-d", "udp.port==42000,rtp", "-q", "-z", "rtp,streams"])
        .output()
        .unwrap_or_else(|e| panic!("tshark is not installed ({e}); apt-get install -y tshark"));
    assert!(
        output.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.lines()
        .filter(|l| l.contains(" 0x"))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let ssrc = cols
                .iter()
                .find(|c| c.starts_with("0x"))
                .unwrap()
                .to_string();
            let lost_at = cols.iter().position(|c| c.ends_with("%)")).unwrap();
            (
                ssrc,
                cols[lost_at - 1].to_string(),
                l.trim_end().ends_with('X'),
            )
        })
        .collect()
}

type Sent = Vec<(Duration, Vec<u8>)>;

fn collect(s: &mut MediaSession, t0: Instant, at: Instant, out: &mut Sent) {
    for t in drain_transmits(s) {
        if t.leg == Leg::Caller {
            out.push((at.duration_since(t0), t.payload));
        }
    }
}

/// Runs the session's timers to the end of the prompt; returns the last wake-up.
fn play(s: &mut MediaSession, t0: Instant, start: Instant, out: &mut Sent) -> Instant {
    let tone = Prompt::tone(&[1000.0], Duration::from_millis(500), 3000.0);
    s.play_prompt(start, Leg::Caller, Playback::once(tone))
        .unwrap();
    collect(s, t0, start, out);
    let mut now = start;
    while let Some(at) = s.poll_timeout() {
        now = at;
        s.handle_timeout(at);
        collect(s, t0, at, out);
    }
    now
}

/// `n` packets of upstream source `ssrc` from the PBX, 20 ms apart from `start`.
#[allow(clippy::too_many_arguments)]
fn pbx(
    s: &mut MediaSession,
    t0: Instant,
    out: &mut Sent,
    ssrc: u32,
    seq: u16,
    ts: u32,
    n: u16,
    start: Instant,
) -> Instant {
    for i in 0..n {
        let at = start + ms(20 * u64::from(i));
        let p = rtp(
            i == 0,
            0,
            seq.wrapping_add(i),
            ts.wrapping_add(160 * u32::from(i)),
            ssrc,
            &[0x7f; 160],
        );
        s.handle_packet(at, Leg::Pbx, addr(PBX), &p);
        collect(s, t0, at, out);
    }
    start + ms(20 * u64::from(n))
}

#[test]
fn the_gateway_stream_passes_tshark_and_the_bad_relay_does_not() {
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcmu);
    let mut to_caller = Sent::new();
    // 1. Consent prompt, 500 ms.
    let now = play(&mut s, t0, t0, &mut to_caller);
    // 2. Bridged: the PBX's own stream, its timestamps unrelated, 70 ms after the prompt.
    s.set_bridge(true);
    let now = pbx(
        &mut s,
        t0,
        &mut to_caller,
        0x1A2B_3C4D,
        65_500,
        4_000_000_000,
        50,
        now + ms(70),
    );
    // 3. Transfer at the PBX: a new SSRC with a new base.
    let now = pbx(
        &mut s,
        t0,
        &mut to_caller,
        0x9E8D_7C6B,
        12_676,
        911_000,
        50,
        now,
    );
    // 4. A second prompt interrupts the relay, then relay resumes.
    let now = play(&mut s, t0, now, &mut to_caller);
    pbx(
        &mut s,
        t0,
        &mut to_caller,
        0x9E8D_7C6B,
        12_726,
        919_000,
        50,
        now + ms(20),
    );
    assert_eq!(to_caller.len(), 25 + 50 + 50 + 25 + 50);

    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("gateway.pcap");
    write_pcap(&good, &to_caller);
    let streams = analyse(&good);
    assert_eq!(streams.len(), 1, "one outgoing stream: {streams:?}");
    assert_eq!(streams[0].0, format!("0x{:08X}", CALLER_STREAM.ssrc));
    assert_eq!(streams[0].1, "0", "no loss");
    assert!(
        !streams[0].2,
        "tshark flags a problem in the gateway's stream"
    );

    // Control: field case 026's bad relay (same SSRC, timestamp back to the PBX's, no marker).
    let case = hex_case("026-rtp-timestamp-jump-prompt-to-relay.hex");
    let mut bad: Vec<(Duration, Vec<u8>)> = case[..3]
        .iter()
        .enumerate()
        .map(|(i, (_, p))| (ms(20 * i as u64), p.clone()))
        .collect();
    for i in 0..10u16 {
        let mut p = case[3].1.clone();
        p[2..4].copy_from_slice(&(1003 + i).to_be_bytes());
        p[4..8].copy_from_slice(&(9000 + 160 * u32::from(i)).to_be_bytes());
        bad.push((ms(160 + 20 * u64::from(i)), p));
    }
    let control = dir.path().join("bad.pcap");
    write_pcap(&control, &bad);
    let flagged = analyse(&control);
    assert_eq!(flagged.len(), 1);
    assert!(
        flagged[0].2,
        "the control stream must be flagged: {flagged:?}"
    );
}
