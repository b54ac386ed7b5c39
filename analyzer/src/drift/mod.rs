//! Drift (design §7): has learning converged (`kubectl karmor coverage`, and the verdict
//! `recommend` prints), and what changed since a baseline (`kubectl karmor diff`).
//!
//! - [`items`]: the distinct behaviour items of every workload, one `GROUP BY` over `events`;
//! - [`generalised`]: items folded as drafts fold paths, and coverage of raw items;
//! - [`stability`]: saturation curves, start-up, drops and the stable/learning/partial verdict;
//! - [`diff`]: new, gone and volume changes against baseline data or a policy;
//! - [`delta`]: the rules to add to a draft for what is new (`--as-policy-delta`).

pub mod delta;
pub mod diff;
pub mod generalised;
pub mod items;
pub mod stability;

pub use diff::{diff, policy_baseline, Change, ChangeKind, DiffOptions, DiffReport};
pub use items::{Category, Group, Items, RawItem};
pub use stability::{stability, Stability, StabilityOptions, Verdict};
