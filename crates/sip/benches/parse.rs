//! Parser throughput on a typical ~1 KB INVITE (three Vias, Record-Route, display names,
//! Contact, Allow/Supported, an SDP offer): our parse + print, and our parse alone, next to
//! `ezk-sip-types` parsing the same bytes in the same run as the reference. The reference
//! splits the head into lines, reads the start line and every header line, and decodes the
//! headers our parser types eagerly (Via, From, To, Call-ID, CSeq, Max-Forwards, Contact,
//! Record-Route), so both sides do comparable work.
//!
//! Target: ≥ 200 000 INVITEs/s per core (parse + print), and faster than the reference.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use callseal_sip::{Limits, Message, Method, parse_datagram};
use criterion::Criterion;
use ezk_sip_types::header::typed::{CSeq, CallID, Contact, FromTo, MaxForwards, Routing, Via};
use ezk_sip_types::msg::{Line, MessageLine, PullParser};
use ezk_sip_types::parse::Parse;
use ezk_sip_types::{Headers, Name};

const TARGET_PER_SEC: f64 = 200_000.0;

#[path = "common/invite.rs"]
mod common;
use common::invite;

/// Ours: parse the datagram and print it again (what a B2BUA leg does with every message).
fn ours_parse_print(bytes: &[u8], limits: &Limits) -> usize {
    let m = parse_datagram(bytes, limits).expect("the INVITE parses");
    m.to_bytes().len()
}

fn ours_parse(bytes: &[u8], limits: &Limits) -> usize {
    let m = parse_datagram(bytes, limits).expect("the INVITE parses");
    m.headers.len() + m.body.len()
}

/// The reference: ezk-sip-types reading the same message and decoding the same headers.
fn reference_parse(src: &Bytes) -> usize {
    let mut lines = PullParser::new(src, 0);
    let first = lines.next().expect("a start line").expect("complete");
    let first = std::str::from_utf8(first).expect("UTF-8");
    let (_, start) = MessageLine::parse(src)(first).expect("start line parses");
    let mut headers = Headers::with_capacity(20);
    for line in &mut lines {
        let line = std::str::from_utf8(line.expect("complete")).expect("UTF-8");
        let (_, line) = Line::parse(src, line).expect("header line parses");
        headers.insert(line.name, line.value);
    }
    let body = src.slice(lines.head_end()..);
    let vias: Vec<Via> = headers.get_named().expect("Via");
    let from: FromTo = headers.get(Name::FROM).expect("From");
    let to: FromTo = headers.get(Name::TO).expect("To");
    let call_id: CallID = headers.get_named().expect("Call-ID");
    let cseq: CSeq = headers.get_named().expect("CSeq");
    let mf: MaxForwards = headers.get_named().expect("Max-Forwards");
    let contact: Vec<Contact> = headers.get_named().expect("Contact");
    let rr: Vec<Routing> = headers.get(Name::RECORD_ROUTE).expect("Record-Route");
    black_box((&start, &from, &to, &call_id, &cseq, &mf));
    vias.len() + contact.len() + rr.len() + body.len()
}

/// Calls per second of `f`, best of 5 rounds of `n` calls.
fn rate(n: usize, mut f: impl FnMut() -> usize) -> f64 {
    for _ in 0..n / 10 {
        black_box(f());
    }
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                black_box(f());
            }
            n as f64 / t.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "meets the target"
    } else {
        "MISSES the target"
    }
}

fn main() {
    let bytes = invite();
    let limits = Limits::default();
    let src = Bytes::from(bytes.clone());
    // Both parsers read the same message the same way before anything is timed.
    let m = Message::parse(&bytes).expect("the INVITE parses");
    assert_eq!(m.method(), Some(&Method::Invite));
    assert_eq!(m.headers.vias().count(), 3);
    assert_eq!(reference_parse(&src), 3 + 1 + 2 + m.body.len());

    let n = 100_000;
    let ours_pp = rate(n, || ours_parse_print(black_box(&bytes), &limits));
    let ours_p = rate(n, || ours_parse(black_box(&bytes), &limits));
    let reference = rate(n, || reference_parse(black_box(&src)));
    println!("message: {} bytes INVITE", bytes.len());
    println!(
        "callseal-sip parse + print: {ours_pp:>10.0}/s  target >= {TARGET_PER_SEC:.0}/s per core: {}",
        verdict(ours_pp >= TARGET_PER_SEC)
    );
    println!("callseal-sip parse only:    {ours_p:>10.0}/s");
    println!("reference ezk-sip-types 0.6 parse (same headers decoded): {reference:>10.0}/s");
    println!(
        "ours/reference: parse + print {:.2}, parse only {:.2}  target > 1 (faster than the reference): {}",
        ours_pp / reference,
        ours_p / reference,
        verdict(ours_pp > reference)
    );

    // Criterion's view of the same three.
    let mut c = Criterion::default()
        .sample_size(50)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    c.bench_function("sip_invite_parse_print", |b| {
        b.iter(|| ours_parse_print(black_box(&bytes), &limits))
    });
    c.bench_function("sip_invite_parse", |b| {
        b.iter(|| ours_parse(black_box(&bytes), &limits))
    });
    c.bench_function("ezk_sip_types_invite_parse", |b| {
        b.iter(|| reference_parse(black_box(&src)))
    });
}
