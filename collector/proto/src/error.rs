//! Errors of the gRPC clients.

use std::path::PathBuf;

use karmor_contract::error::ContractError;

/// Why a gRPC client call failed. Messages name the address, the call, or the segment.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached.
    #[error("cannot connect to {addr}: {message}")]
    Connect {
        /// The address tried.
        addr: String,
        /// What the transport said.
        message: String,
    },
    /// The server answered with an error status, or the connection broke mid-call.
    #[error("{call}: {}: {}", status.code(), status.message())]
    Rpc {
        /// The RPC, e.g. `FetchSegment node=a/…/seg-….parquet`.
        call: String,
        /// The status.
        status: Box<tonic::Status>,
    },
    /// Received bytes that do not match their checksum, offset or size.
    #[error("{path}: {message}")]
    Integrity {
        /// The segment.
        path: String,
        /// What did not match.
        message: String,
    },
    /// A reply that breaks the protocol (missing field, unsafe path, …).
    #[error("protocol error: {message}")]
    Protocol {
        /// What is wrong.
        message: String,
    },
    /// Reading or writing the bundle (manifest, segment files).
    #[error(transparent)]
    Bundle(#[from] ContractError),
    /// Local file I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl ClientError {
    pub(crate) fn rpc(call: impl Into<String>, status: tonic::Status) -> Self {
        ClientError::Rpc {
            call: call.into(),
            status: Box::new(status),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ClientError::Io {
            path: path.into(),
            source,
        }
    }

    /// True when retrying the same call may succeed (a cut connection, an unavailable server,
    /// a corrupted chunk), false for errors that will repeat (not found, bad request).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Connect { .. } | ClientError::Integrity { .. } => true,
            ClientError::Rpc { status, .. } => matches!(
                status.code(),
                tonic::Code::Unavailable
                    | tonic::Code::Unknown
                    | tonic::Code::Internal
                    | tonic::Code::Aborted
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::ResourceExhausted
                    | tonic::Code::Cancelled
            ),
            _ => false,
        }
    }
}
