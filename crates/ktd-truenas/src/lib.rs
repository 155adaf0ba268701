//! # ktd-truenas
//!
//! The TrueNAS source: one client for REST v2.0 and JSON-RPC 2.0 over WebSocket, and a poller
//! that diffs bulk queries into events. Arrives with the ingest work.
