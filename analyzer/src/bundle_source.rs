//! A bundle as the user names it: a directory, or one `.tar` of it (design §4), gzipped or not.
//!
//! DuckDB reads Parquet from files, so an archive is unpacked into a temporary directory that
//! lives as long as the [`BundleSource`]. Only directories and regular files are unpacked,
//! and only at relative paths that stay inside that directory: links, devices and entries
//! such as `../x` or `/etc/x` are skipped and reported. An archive cut short keeps what came
//! before the cut; the segments it lost are then reported missing by whoever reads the
//! manifest, and the rest is analysed.
//!
//! The bundle may sit at the archive's top (`tar cf b.tar -C dir .`) or in its single
//! top-level directory (`tar cf b.tar dir`).

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use karmor_contract::bundle::MANIFEST;

use crate::error::{AnalyzerError, Result};

/// A bundle directory ready to read, and where it came from.
#[derive(Debug)]
pub struct BundleSource {
    /// What the user named: a directory or an archive.
    named: PathBuf,
    /// The bundle directory: `named` itself, or inside `unpacked`.
    root: PathBuf,
    /// The temporary directory an archive was unpacked into, removed on drop.
    unpacked: Option<tempfile::TempDir>,
    /// Archive entries that were not unpacked, with the reason.
    skipped: Vec<(String, String)>,
}

impl BundleSource {
    /// Opens `path`: a directory is used as it is; a file is unpacked as a (gzipped) tar.
    pub fn open(path: &Path) -> Result<Self> {
        let meta = fs::metadata(path).map_err(|e| io_error(path, e))?;
        if meta.is_dir() {
            return Ok(BundleSource {
                named: path.to_path_buf(),
                root: path.to_path_buf(),
                unpacked: None,
                skipped: Vec::new(),
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("karmor-bundle-")
            .tempdir()
            .map_err(|e| io_error(Path::new("temporary directory"), e))?;
        let skipped = unpack(path, dir.path())?;
        let root = bundle_root(dir.path()).map_err(|e| io_error(path, e))?;
        Ok(BundleSource {
            named: path.to_path_buf(),
            root,
            unpacked: Some(dir),
            skipped,
        })
    }

    /// The bundle directory to read.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What the user named.
    pub fn named(&self) -> &Path {
        &self.named
    }

    /// True when the bundle came from an archive.
    pub fn is_archive(&self) -> bool {
        self.unpacked.is_some()
    }

    /// Archive entries that were not unpacked (`(entry, reason)`); the entry is the name
    /// in the archive.
    pub fn skipped(&self) -> &[(String, String)] {
        &self.skipped
    }

    /// `path` (under [`BundleSource::root`]) as the user should see it: inside the archive
    /// (`b.tar/node=a/…`) rather than in a temporary directory that is gone after the command.
    pub fn shown(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.root) {
            Ok(rel) if self.is_archive() => self.named.join(rel),
            _ => path.to_path_buf(),
        }
    }

    /// `text` with the temporary directory replaced by the archive's name, for messages that
    /// quote a path.
    pub fn shown_text(&self, text: &str) -> String {
        if !self.is_archive() {
            return text.to_string();
        }
        text.replace(
            &self.root.display().to_string(),
            &self.named.display().to_string(),
        )
    }
}

fn io_error(path: &Path, source: io::Error) -> AnalyzerError {
    AnalyzerError::Bundle(karmor_contract::ContractError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Unpacks the tar (or gzipped tar) at `archive` into `into`. Returns the entries skipped.
/// Fails only when `archive` cannot be opened or is not a tar at all.
fn unpack(archive: &Path, into: &Path) -> Result<Vec<(String, String)>> {
    let mut file = BufReader::new(File::open(archive).map_err(|e| io_error(archive, e))?);
    // Sniff gzip's magic bytes, then put them back in front of the stream.
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(|e| io_error(archive, e))?;
    let stream = io::Cursor::new(magic[..n].to_vec()).chain(file);
    let reader: Box<dyn Read> = if magic[..n] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(stream))
    } else {
        Box::new(stream)
    };
    let not_tar = |message: String| {
        AnalyzerError::Invalid(format!(
            "{}: not a bundle directory or a .tar of one: {message}",
            archive.display()
        ))
    };
    let mut tar = tar::Archive::new(reader);
    let entries = tar.entries().map_err(|e| not_tar(e.to_string()))?;
    let mut skipped = Vec::new();
    let mut unpacked = 0usize;
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(e) if unpacked == 0 && skipped.is_empty() => return Err(not_tar(e.to_string())),
            Err(e) => {
                skipped.push((
                    "the rest of the archive".into(),
                    format!("cut short or corrupt after {unpacked} entries ({e})"),
                ));
                break;
            }
        };
        let name = String::from_utf8_lossy(&entry.path_bytes()).to_string();
        let Some(rel) = safe_relative(&name) else {
            skipped.push((name, "a path outside the bundle: skipped".into()));
            continue;
        };
        let kind = entry.header().entry_type();
        if rel.as_os_str().is_empty() && kind.is_dir() {
            continue; // `./`, the archive's top
        }
        let dest = into.join(&rel);
        let outcome = if rel.as_os_str().is_empty() {
            skipped.push((name, "an entry without a name: skipped".into()));
            continue;
        } else if kind.is_dir() {
            fs::create_dir_all(&dest)
        } else if kind.is_file() {
            write_entry(&mut entry, &dest)
        } else {
            skipped.push((name, format!("not a regular file ({kind:?}): skipped")));
            continue;
        };
        match outcome {
            Ok(()) => unpacked += 1,
            Err(e) => {
                let _ = fs::remove_file(&dest);
                skipped.push((name, format!("cannot unpack: {e}")));
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    break;
                }
            }
        }
    }
    if unpacked == 0 && skipped.is_empty() {
        return Err(not_tar("the archive is empty".into()));
    }
    Ok(skipped)
}

/// `name` as a relative path of plain components (empty for `./`), or `None` when it would
/// leave the directory it is unpacked into (absolute, `..`, a drive prefix) or names nothing.
fn safe_relative(name: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!name.is_empty()).then_some(out)
}

/// Writes a regular entry's bytes to `dest`; an entry shorter than its header says (the
/// archive was cut inside it) is an `UnexpectedEof` error.
fn write_entry<R: Read>(entry: &mut tar::Entry<'_, R>, dest: &Path) -> io::Result<()> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)?;
    }
    let want = entry.header().size()?;
    let mut out = File::create(dest)?;
    let got = io::copy(entry, &mut out)?;
    if got != want {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("cut short: {got} of {want} bytes"),
        ));
    }
    Ok(())
}

/// The bundle directory inside an unpacked archive: its top when `manifest.json` or Parquet
/// files are there, otherwise its only top-level directory.
fn bundle_root(top: &Path) -> io::Result<PathBuf> {
    if top.join(MANIFEST).exists() {
        return Ok(top.to_path_buf());
    }
    let mut dirs = Vec::new();
    let mut files = false;
    for entry in fs::read_dir(top)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            dirs.push(entry.path());
        } else {
            files = true;
        }
    }
    match dirs.as_slice() {
        [only] if !files && !is_partition(only) => Ok(only.clone()),
        _ => Ok(top.to_path_buf()),
    }
}

/// True for a Hive partition directory (`node=…`), which belongs to a bundle's top.
fn is_partition(dir: &Path) -> bool {
    dir.file_name()
        .is_some_and(|n| n.to_string_lossy().contains('='))
}
