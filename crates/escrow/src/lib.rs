//! callseal-escrow (see docs/ARCHITECTURE.md).
