//! callseal-call (see docs/ARCHITECTURE.md).
