//! callseal-recording (see docs/ARCHITECTURE.md).
