//! # ktd-notify
//!
//! Notification routing and sinks. Arrives with the notifications work.
