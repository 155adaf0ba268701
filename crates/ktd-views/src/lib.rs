//! # ktd-views
//!
//! Pure folds over the event log. [`FindingsView`] keeps the [`Inventory`] (both systems as
//! last observed, and how complete that picture is), joins the two sides
//! ([`topology::Topology`]) and runs the finding catalogue ([`rules::RULES`]) whenever the
//! picture changes, emitting `FindingOpened` / `FindingUpdated` / `FindingResolved`.
//! [`ledger`] builds the snapshot ledger from the same inventory.
//!
//! No IO and no wall clock: the same events give the same findings, live, on replay, and
//! from an offline bundle.
//!
//! ```
//! use ktd_views::{FindingsConfig, FindingsView};
//! let mut view = FindingsView::new(FindingsConfig::default());
//! # let events: Vec<ktd_model::Envelope> = Vec::new();
//! for env in &events {
//!     for derived in view.apply(env) {
//!         println!("{}", derived.type_name());
//!     }
//! }
//! println!("{} findings open", view.findings().count());
//! ```

pub mod config;
pub mod findings;
pub mod inventory;
pub mod ledger;
pub mod rules;
pub mod topology;

pub use config::{Age, FindingsConfig, RetentionPolicy};
pub use findings::{FindingsView, Summary};
pub use inventory::Inventory;
