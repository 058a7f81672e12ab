//! callseal-gateway (see docs/ARCHITECTURE.md).
