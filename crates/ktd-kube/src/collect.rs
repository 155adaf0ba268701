//! Bundle collection: every watched kind listed once and written as `kubernetes.json`.

/// Why collection failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {}

/// Placeholder.
pub fn collect_list() {}
