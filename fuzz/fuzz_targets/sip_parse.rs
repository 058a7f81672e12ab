//! The SIP parser, printer and stream framer on arbitrary bytes (RFC 3261 §7, §18.3):
//! - as a datagram: whatever parses prints to bytes that parse back to the same message and
//!   print the same again; whatever fails yields, if any, an error response that itself parses;
//! - as a stream cut at arbitrary points (the first input bytes choose the cuts): the framer
//!   yields the same items, and the same kind of error, as when it gets everything at once.
#![no_main]

use std::mem::discriminant;

use callseal_sip::{
    Error, Limits, Message, StreamFramer, StreamItem, parse_datagram, response_for_unparseable,
    status_for,
};
use libfuzzer_sys::fuzz_target;

/// Printing expands compact names, splits comma lists into lines and quotes display names, so
/// a message inside the default limits may print to one outside them; the reparse checks the
/// grammar, not the limits.
fn unlimited() -> Limits {
    Limits {
        max_message_size: usize::MAX,
        max_headers: usize::MAX,
        max_line_length: usize::MAX,
    }
}

/// print ∘ parse ∘ print = print, and parse ∘ print = id.
fn round_trip(msg: &Message) {
    let printed = msg.to_bytes();
    let again = match parse_datagram(&printed, &unlimited()) {
        Ok(m) => m,
        Err(e) => panic!(
            "printed message does not parse: {e}\n{}",
            String::from_utf8_lossy(&printed)
        ),
    };
    assert_eq!(&again, msg, "parse(print(m)) != m");
    assert_eq!(
        again.to_bytes(),
        printed,
        "print(parse(print(m))) != print(m)"
    );
}

/// Items until the framer wants more bytes, then the error if it failed.
fn drain(framer: &mut StreamFramer, items: &mut Vec<StreamItem>) -> Option<Error> {
    loop {
        match framer.next_item() {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return None,
            Err(e) => return Some(e),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (control, bytes) = data.split_at(data.len().min(4));
    let limits = Limits::default();

    // As a datagram.
    match parse_datagram(bytes, &limits) {
        Ok(msg) => round_trip(&msg),
        Err(error) => {
            if let Some(resp) = response_for_unparseable(bytes, &error, Some("fuzztag")) {
                let parsed = parse_datagram(&resp.to_bytes(), &unlimited())
                    .expect("the error response parses");
                assert_eq!(parsed.status(), status_for(&error));
                assert!(parsed.headers.top_via().is_some(), "it can be routed");
            }
        }
    }

    // As a stream: all at once…
    let mut whole = StreamFramer::new(limits);
    whole.push(bytes);
    let mut expected = Vec::new();
    let expected_error = drain(&mut whole, &mut expected);

    // …and cut where the control bytes say.
    let mut cut = StreamFramer::new(limits);
    let mut got = Vec::new();
    let mut got_error = None;
    let mut rest = bytes;
    for &c in control {
        let n = (usize::from(c) * 7) % (rest.len() + 1);
        let (chunk, tail) = rest.split_at(n);
        cut.push(chunk);
        rest = tail;
        got_error = drain(&mut cut, &mut got);
        if got_error.is_some() {
            break;
        }
    }
    if got_error.is_none() {
        cut.push(rest);
        got_error = drain(&mut cut, &mut got);
    }
    assert_eq!(got, expected, "the cuts changed what was framed");
    // The same kind of error (a size may be noticed at a different fill level).
    assert_eq!(
        got_error.as_ref().map(discriminant),
        expected_error.as_ref().map(discriminant),
        "{got_error:?} vs {expected_error:?}"
    );
    for item in &expected {
        if let StreamItem::Message(m) = item {
            round_trip(m);
        }
    }
});
