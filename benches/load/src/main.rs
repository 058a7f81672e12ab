//! Load benchmark harness (see benches/README.md).
fn main() {}
