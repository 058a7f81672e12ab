//! Parses the bench's INVITE `N` times, and prints it again each time unless told `parse`:
//! a loop to count instructions per message under callgrind, where timing is not reliable.
//!
//! ```text
//! cargo build --release -p callseal-sip --example parse_loop
//! valgrind --tool=callgrind target/release/examples/parse_loop 1001 print
//! valgrind --tool=callgrind target/release/examples/parse_loop 1 print
//! ```
//! The difference of the two totals divided by 1000 is the count per message, without the
//! start-up.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use callseal_sip::{Limits, parse_datagram};

#[path = "../benches/common/invite.rs"]
mod common;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let print = args.next().is_none_or(|mode| mode != "parse");
    let bytes = common::invite();
    let limits = Limits::default();
    let mut total = 0usize;
    for _ in 0..n {
        let m = parse_datagram(black_box(&bytes), &limits).expect("the INVITE parses");
        total += if print {
            m.to_bytes().len()
        } else {
            m.headers.len() + m.body.len()
        };
        black_box(&m);
    }
    black_box(total);
}
