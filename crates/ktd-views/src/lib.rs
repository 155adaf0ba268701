//! # ktd-views
//!
//! Pure folds over the event log: inventory, orphans, snapshot ledger, validation, capacity.
//! Arrives with the findings work.
