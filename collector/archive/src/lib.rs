//! The archive tier (design §4, *cold*): bundles on S3-compatible object storage, in the bundle
//! layout under `PREFIX/cluster=<name>/`, with one `manifest.json` per cluster, so that Spark,
//! Trino, Athena or DuckDB read the archive as it is.
//!
//! - [`location`]: `s3://BUCKET/PREFIX` and the object keys under it.
//! - [`connect`]: the S3 client from the AWS environment (and `~/.aws` profile) chain, and the
//!   errors a denied or missing bucket or wrong credentials give.
//! - [`upload`]: a local bundle into the archive: content-named objects, those already there
//!   skipped, the manifest merged (compacted files unlist what they `replace`).
//! - [`multipart`]: large files in parts, resumable after a cut through a local journal.
//! - [`fetch`]: reading back: manifests first, pruning by cluster, node and time, fetching only
//!   the needed files (sha256-checked) into a content-addressed cache, reused next time.

pub mod connect;
pub mod error;
pub mod fetch;
pub mod location;
pub mod multipart;
pub mod upload;

pub use connect::Remote;
pub use error::ArchiveError;
pub use location::ArchiveUrl;
