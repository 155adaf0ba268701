//! # ktd-api
//!
//! The REST API (OpenAPI 3), WebSocket live stream and Prometheus metrics. Arrives with the
//! serve work.
