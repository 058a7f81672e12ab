//! callseal-sip (see docs/ARCHITECTURE.md).
