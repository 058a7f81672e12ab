use std::time::{Duration, Instant};

use super::*;

fn block(code: u8, end: bool, duration: u16) -> [u8; 4] {
    TelephoneEvent {
        code,
        end,
        volume: 10,
        duration,
    }
    .to_bytes()
}

fn digits(
    detector: &mut EventDetector,
    t0: Instant,
    packets: &[(bool, u32, [u8; 4])],
) -> Vec<(char, u32)> {
    let mut out = Vec::new();
    for (i, (marker, ts, payload)) in packets.iter().enumerate() {
        let now = t0 + Duration::from_millis(20 * i as u64);
        if let Some(d) = detector.on_packet(now, 1, *marker, *ts, payload).unwrap() {
            out.push((d.digit.as_char(), d.rtp_timestamp));
        }
    }
    out
}

#[test]
fn event_block_round_trips_and_short_payload_is_refused() {
    let e = TelephoneEvent::parse(&[0x07, 0x8a, 0x01, 0xe0]).unwrap();
    assert_eq!(
        e,
        TelephoneEvent {
            code: 7,
            end: true,
            volume: 10,
            duration: 480
        }
    );
    assert_eq!(e.to_bytes(), [0x07, 0x8a, 0x01, 0xe0]);
    assert_eq!(
        TelephoneEvent::parse(&[1, 2, 3]),
        Err(EventError::TooShort { len: 3 })
    );
}

#[test]
fn updates_and_end_copies_give_one_digit_same_key_twice_gives_two() {
    let t0 = Instant::now();
    let mut d = EventDetector::new(false);
    let got = digits(
        &mut d,
        t0,
        &[
            (true, 1000, block(5, false, 160)),
            (false, 1000, block(5, false, 320)),
            (false, 1000, block(5, true, 480)),
            (false, 1000, block(5, true, 480)),
            (false, 1000, block(5, true, 480)),
            (true, 2000, block(5, false, 160)),
            (false, 2000, block(5, true, 320)),
        ],
    );
    assert_eq!(got, vec![('5', 1000), ('5', 2000)]);
    assert!(!d.in_progress());
}

#[test]
fn missing_marker_and_lost_start_still_detect() {
    let t0 = Instant::now();
    let mut d = EventDetector::new(false);
    let got = digits(
        &mut d,
        t0,
        &[
            (false, 500, block(9, false, 320)),
            (false, 500, block(9, true, 400)),
            (false, 900, block(1, true, 400)),
        ],
    );
    assert_eq!(got, vec![('9', 500), ('1', 900)]);
}

#[test]
fn soft_timeout_ends_an_event_and_a_late_end_is_a_duplicate() {
    let t0 = Instant::now();
    let mut d = EventDetector::new(false);
    assert!(
        d.on_packet(t0, 1, true, 70, &block(2, false, 160))
            .unwrap()
            .is_some()
    );
    assert_eq!(d.poll_timeout(), Some(t0 + EVENT_SOFT_TIMEOUT));
    d.handle_timeout(t0 + EVENT_SOFT_TIMEOUT - Duration::from_millis(1));
    assert!(d.in_progress());
    d.handle_timeout(t0 + EVENT_SOFT_TIMEOUT);
    assert!(!d.in_progress());
    assert_eq!(d.poll_timeout(), None);
    let late = t0 + Duration::from_secs(2);
    assert_eq!(
        d.on_packet(late, 1, false, 70, &block(2, true, 13_568))
            .unwrap(),
        None
    );
}

#[test]
fn saturated_duration_continues_in_a_new_segment_without_a_second_digit() {
    // RFC 4733 §2.5.1.3: at 0xFFFF the event goes on with timestamp + 0xFFFF.
    let t0 = Instant::now();
    let mut d = EventDetector::new(false);
    let ts = u32::MAX - 100; // the segment boundary also crosses the timestamp wrap
    let got = digits(
        &mut d,
        t0,
        &[
            (true, ts, block(0, false, 65_000)),
            (false, ts, block(0, false, 0xffff)),
            (false, ts.wrapping_add(0xffff), block(0, false, 400)),
            (false, ts.wrapping_add(0xffff), block(0, true, 800)),
            (false, ts, block(0, false, 0xffff)),
        ],
    );
    assert_eq!(got, vec![('0', ts)]);
}

#[test]
fn contiguous_merge_is_opt_in() {
    let packets = [
        (true, 90_000, block(3, false, 160)),
        (false, 90_160, block(3, false, 320)),
        (false, 90_320, block(3, true, 480)),
    ];
    let t0 = Instant::now();
    let strict = digits(&mut EventDetector::new(false), t0, &packets);
    assert_eq!(strict, vec![('3', 90_000), ('3', 90_160), ('3', 90_320)]);
    let merged = digits(&mut EventDetector::new(true), t0, &packets);
    assert_eq!(merged, vec![('3', 90_000)]);
    // Even when merging, a marker means a new key press.
    let marked = digits(
        &mut EventDetector::new(true),
        t0,
        &[
            (true, 90_000, block(3, false, 160)),
            (true, 90_160, block(3, false, 160)),
        ],
    );
    assert_eq!(marked.len(), 2);
}

#[test]
fn non_dtmf_events_are_tracked_but_not_reported() {
    let t0 = Instant::now();
    let mut d = EventDetector::new(false);
    // Event 16 is hook flash (RFC 4733 §3.2).
    assert_eq!(
        d.on_packet(t0, 1, true, 10, &block(16, false, 160))
            .unwrap(),
        None
    );
    assert!(d.in_progress());
    assert!(
        d.on_packet(t0, 1, true, 500, &block(4, false, 160))
            .unwrap()
            .is_some()
    );
}

#[test]
fn reset_ends_the_event_of_the_previous_source() {
    let t0 = Instant::now();
    let mut d = EventDetector::new(false);
    assert!(
        d.on_packet(t0, 1, true, 10, &block(8, false, 160))
            .unwrap()
            .is_some()
    );
    d.reset();
    assert!(!d.in_progress());
    assert_eq!(
        d.on_packet(t0, 1, false, 10, &block(8, true, 320)).unwrap(),
        None
    );
    // Same timestamp on another SSRC is another event.
    assert!(
        d.on_packet(t0, 2, true, 10, &block(8, false, 160))
            .unwrap()
            .is_some()
    );
}

#[test]
fn generator_sends_start_updates_and_three_end_copies() {
    let mut g = EventGenerator::new(
        Digit::D7,
        Duration::from_millis(100),
        Duration::from_millis(20),
        10,
    );
    let mut packets = Vec::new();
    while let Some(p) = g.next_packet() {
        packets.push(p);
    }
    let summary: Vec<(bool, bool, u16)> = packets
        .iter()
        .map(|p| (p.marker, p.event.end, p.event.duration))
        .collect();
    assert_eq!(
        summary,
        vec![
            (true, false, 160),
            (false, false, 320),
            (false, false, 480),
            (false, false, 640),
            (false, true, 800),
            (false, true, 800),
            (false, true, 800),
        ]
    );
    assert!(
        packets
            .iter()
            .all(|p| p.event.code == 7 && p.event.volume == 10)
    );
    // What the generator sends, the detector reports once.
    let t0 = Instant::now();
    let mut d = EventDetector::new(false);
    let found: Vec<_> = packets
        .iter()
        .filter_map(|p| {
            d.on_packet(t0, 9, p.marker, 4242, &p.event.to_bytes())
                .unwrap()
        })
        .collect();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].digit, Digit::D7);
}

#[test]
fn generator_at_30_ms_and_an_odd_duration_ends_exactly_on_it() {
    let mut g = EventGenerator::new(
        Digit::Hash,
        Duration::from_millis(70),
        Duration::from_millis(30),
        63,
    );
    let durations: Vec<u16> = std::iter::from_fn(|| g.next_packet())
        .map(|p| p.event.duration)
        .collect();
    assert_eq!(durations, vec![240, 480, 560, 560, 560]);
}
