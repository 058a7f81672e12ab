//! callseal-cli (see docs/ARCHITECTURE.md).
