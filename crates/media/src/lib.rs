//! callseal-media (see docs/ARCHITECTURE.md).
