//! # ktd-remediate
//!
//! Remediation plans, approvals and execution with quarantine and undo. Arrives with the
//! remediation work.
