//! callseal-testkit (see docs/ARCHITECTURE.md).
