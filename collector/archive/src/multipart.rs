//! Large files go up in parts (S3 multipart upload), and a cut upload resumes: each part's id
//! is written to a journal file (`<journal dir>/<sha256 of bucket/key>.json`) as soon as the
//! store has it, so that the next run continues with the next part of the same upload instead
//! of starting over. A journal whose upload the store no longer knows (aborted, expired) is
//! dropped and the file sent again.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::PutPayload;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::connect::Remote;
use crate::error::{ArchiveError, Result};

/// Part size used unless told otherwise: 8 MiB (S3 wants at least 5 MiB but for the last).
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;

/// What the journal holds for one upload in progress.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct UploadState {
    key: String,
    sha256: String,
    size: u64,
    part_size: u64,
    upload_id: String,
    /// Ids of the parts done, in order.
    parts: Vec<String>,
}

/// How one multipart upload went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MultipartOutcome {
    /// Parts a previous, cut run had sent (not sent again).
    pub resumed_parts: usize,
    /// Parts sent by this run.
    pub sent_parts: usize,
}

fn journal_path(dir: &Path, remote: &Remote, key: &str) -> PathBuf {
    let id = hex::encode(Sha256::digest(format!("{}/{key}", remote.url.bucket)));
    dir.join(format!("{}.json", &id[..32]))
}

fn save(path: &Path, state: &UploadState) -> Result<()> {
    let text = serde_json::to_vec(state).map_err(|e| ArchiveError::Other(e.to_string()))?;
    karmor_contract::segment::write_atomic(path, &text)?;
    Ok(())
}

fn read_part(local: &Path, offset: u64, len: u64) -> Result<Vec<u8>> {
    let mut f = std::fs::File::open(local).map_err(|e| ArchiveError::io(local, e))?;
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| ArchiveError::io(local, e))?;
    let mut buf = vec![0; len as usize];
    f.read_exact(&mut buf)
        .map_err(|e| ArchiveError::io(local, e))?;
    Ok(buf)
}

/// Uploads `local` (`size` bytes, content `sha256`) to `key` in parts of `part_size`, resuming
/// an upload a journal in `journal_dir` records for the same key and content. `sent(n)` is
/// called after each part with its bytes.
pub async fn upload(
    remote: &Remote,
    local: &Path,
    key: &str,
    (sha256, size): (&str, u64),
    part_size: u64,
    journal_dir: &Path,
    sent: &(dyn Fn(u64) + Sync),
) -> Result<MultipartOutcome> {
    std::fs::create_dir_all(journal_dir).map_err(|e| ArchiveError::io(journal_dir, e))?;
    let journal = journal_path(journal_dir, remote, key);
    let location = ObjectPath::from(key);
    let part_size = part_size.max(1);
    let previous: Option<UploadState> = std::fs::read(&journal)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|s: &UploadState| {
            s.key == key && s.sha256 == sha256 && s.size == size && s.part_size == part_size
        });
    let resuming = previous.is_some();
    let mut state = match previous {
        Some(s) => s,
        None => {
            let id = remote
                .store
                .create_multipart(&location)
                .await
                .map_err(|e| remote.error(e, key))?;
            let s = UploadState {
                key: key.to_string(),
                sha256: sha256.to_string(),
                size,
                part_size,
                upload_id: id,
                parts: Vec::new(),
            };
            save(&journal, &s)?;
            s
        }
    };
    let total_parts = size.div_ceil(part_size).max(1) as usize;
    let mut outcome = MultipartOutcome {
        resumed_parts: state.parts.len().min(total_parts),
        sent_parts: 0,
    };
    if outcome.resumed_parts > 0 {
        sent(outcome.resumed_parts as u64 * part_size);
    }
    for idx in state.parts.len()..total_parts {
        let offset = idx as u64 * part_size;
        let len = part_size.min(size - offset);
        let bytes = read_part(local, offset, len)?;
        let put = remote
            .store
            .put_part(&location, &state.upload_id, idx, PutPayload::from(bytes))
            .await;
        let part = match put {
            Ok(p) => p,
            Err(object_store::Error::NotFound { .. }) if resuming => {
                // The store no longer knows the upload: start over, once.
                let _ = std::fs::remove_file(&journal);
                return Box::pin(upload(
                    remote,
                    local,
                    key,
                    (sha256, size),
                    part_size,
                    journal_dir,
                    sent,
                ))
                .await;
            }
            Err(e) => return Err(remote.error(e, key)),
        };
        state.parts.push(part.content_id);
        save(&journal, &state)?;
        outcome.sent_parts += 1;
        sent(len);
    }
    let parts = state
        .parts
        .iter()
        .take(total_parts)
        .map(|id| PartId {
            content_id: id.clone(),
        })
        .collect();
    remote
        .store
        .complete_multipart(&location, &state.upload_id, parts)
        .await
        .map_err(|e| remote.error(e, key))?;
    let _ = std::fs::remove_file(&journal);
    Ok(outcome)
}
