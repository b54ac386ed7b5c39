//! Deterministic test data for kubectl-karmor.
//!
//! - [`demo::events`]: the demo data set behind `testdata/demo/` (six hours of WordPress and
//!   MySQL on a two-node cluster, with four suspicious behaviours after 12:00);
//! - [`synthetic::events`]: millions of plausible rows for benchmarks, fast and seeded;
//! - [`rng`]: the small PRNG both use, so that fixtures never change with a dependency.
//!
//! `gen-demo` (see `scripts/gen-testdata.sh`) writes the demo bundle.

pub mod demo;
pub mod rng;
pub mod synthetic;

use std::path::PathBuf;

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Where the committed demo bundle lives: `<workspace>/testdata/demo`.
pub fn demo_bundle_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo")
}
