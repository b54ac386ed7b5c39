//! Errors of the archive tier: each names the object (`s3://BUCKET/KEY`) or file concerned.

use std::path::PathBuf;

/// What went wrong while archiving or reading an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The `--to`/`--bundle` value is not an `s3://BUCKET[/PREFIX]` URL.
    #[error("{url:?} is not an archive URL: {reason} (expected s3://BUCKET/PREFIX)")]
    Url {
        /// The value given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The bucket does not exist at this endpoint.
    #[error("bucket {bucket:?} does not exist at {endpoint} (create it, or check AWS_ENDPOINT_URL and the bucket name)")]
    MissingBucket {
        /// The bucket.
        bucket: String,
        /// The endpoint asked.
        endpoint: String,
    },
    /// The credentials were refused (unknown key, bad signature, expired token).
    #[error("credentials refused by {endpoint} for s3://{bucket}: {detail} (credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, else AWS_PROFILE in ~/.aws/credentials)")]
    Credentials {
        /// The bucket.
        bucket: String,
        /// The endpoint asked.
        endpoint: String,
        /// The server's error code and message.
        detail: String,
    },
    /// The credentials are valid but not allowed this operation on this bucket or key.
    #[error("access denied to {url} at {endpoint}: {detail}")]
    Denied {
        /// The object or prefix.
        url: String,
        /// The endpoint asked.
        endpoint: String,
        /// The server's error code and message.
        detail: String,
    },
    /// Any other object storage error, on a named object.
    #[error("{url}: {detail}")]
    Store {
        /// The object or prefix.
        url: String,
        /// What the store said.
        detail: String,
    },
    /// An object's bytes do not match the sha256 its manifest records.
    #[error("{url}: sha256 {actual} does not match the manifest's {expected} (the object is corrupt or was replaced)")]
    Checksum {
        /// The object.
        url: String,
        /// The manifest's sha256.
        expected: String,
        /// The sha256 of the bytes read.
        actual: String,
    },
    /// A local file or directory.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The bundle contract (manifest, segment) refused something.
    #[error(transparent)]
    Contract(#[from] karmor_contract::ContractError),
    /// Anything else, said in words.
    #[error("{0}")]
    Other(String),
}

impl ArchiveError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result of the archive tier.
pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;
