//! `s3://BUCKET/PREFIX` and the keys of an archive under it:
//! `PREFIX/cluster=<name>/manifest.json` and `PREFIX/cluster=<name>/<bundle path>`.

use karmor_contract::bundle::{sanitize_component, MANIFEST};

use crate::error::{ArchiveError, Result};

/// Scheme of archive URLs.
pub const SCHEME: &str = "s3://";

/// Whether `text` names an archive (an `s3://` URL) rather than a local path.
pub fn is_archive_url(text: &str) -> bool {
    text.starts_with(SCHEME)
}

/// An archive location: a bucket and a key prefix (no leading or trailing `/`, maybe empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveUrl {
    /// The bucket.
    pub bucket: String,
    /// The key prefix under which `cluster=<name>/` directories live.
    pub prefix: String,
}

impl ArchiveUrl {
    /// Parses `s3://BUCKET[/PREFIX]`.
    pub fn parse(text: &str) -> Result<Self> {
        let err = |reason: &str| ArchiveError::Url {
            url: text.to_string(),
            reason: reason.to_string(),
        };
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| err("it does not start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(err("no bucket"));
        }
        if !bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-'))
        {
            return Err(err(
                "a bucket name has lower-case letters, digits, dots and hyphens only",
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
            return Err(err("the prefix has an empty, '.' or '..' component"));
        }
        Ok(Self {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The key prefix of a cluster's bundle: `PREFIX/cluster=<name>`.
    pub fn cluster_prefix(&self, cluster: &str) -> String {
        self.key(&format!("cluster={}", sanitize_component(cluster)))
    }

    /// The key of a cluster's manifest.
    pub fn manifest_key(&self, cluster: &str) -> String {
        format!("{}/{MANIFEST}", self.cluster_prefix(cluster))
    }

    /// The key of a bundle file (bundle-relative `path`) of a cluster.
    pub fn file_key(&self, cluster: &str, path: &str) -> String {
        format!("{}/{path}", self.cluster_prefix(cluster))
    }

    /// `rel` under the prefix.
    pub fn key(&self, rel: &str) -> String {
        if self.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.prefix)
        }
    }

    /// `s3://BUCKET/KEY`, for messages.
    pub fn url_of(&self, key: &str) -> String {
        format!("{SCHEME}{}/{key}", self.bucket)
    }
}

impl std::fmt::Display for ArchiveUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "{SCHEME}{}", self.bucket)
        } else {
            write!(f, "{SCHEME}{}/{}", self.bucket, self.prefix)
        }
    }
}

/// The cluster named by a common prefix `…/cluster=<name>` of a listing, if it is one.
pub fn cluster_of_prefix(prefix: &str) -> Option<&str> {
    prefix
        .trim_end_matches('/')
        .rsplit('/')
        .next()?
        .strip_prefix("cluster=")
        .filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_bucket_and_prefix() -> Result<()> {
        let u = ArchiveUrl::parse("s3://audit-archive/karmor/prod/")?;
        assert_eq!(u.bucket, "audit-archive");
        assert_eq!(u.prefix, "karmor/prod");
        assert_eq!(
            u.file_key("kind-dev", "node=a/date=2026-11-20/hour=08/seg-1.parquet"),
            "karmor/prod/cluster=kind-dev/node=a/date=2026-11-20/hour=08/seg-1.parquet"
        );
        assert_eq!(
            u.manifest_key("kind dev"),
            "karmor/prod/cluster=kind_dev/manifest.json"
        );
        let bare = ArchiveUrl::parse("s3://b1b")?;
        assert_eq!(bare.manifest_key("c"), "cluster=c/manifest.json");
        assert_eq!(bare.to_string(), "s3://b1b");
        Ok(())
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (text, reason) in [
            ("/tmp/bundle", "does not start with s3://"),
            ("s3:///x", "no bucket"),
            ("s3://Bucket/x", "lower-case"),
            ("s3://b1b/a/../x", "'..'"),
        ] {
            match ArchiveUrl::parse(text) {
                Err(e) => assert!(e.to_string().contains(reason), "{text}: {e}"),
                Ok(u) => panic!("{text} parsed as {u:?}"),
            }
        }
    }

    #[test]
    fn cluster_prefixes_name_their_cluster() {
        assert_eq!(cluster_of_prefix("p/q/cluster=prod"), Some("prod"));
        assert_eq!(cluster_of_prefix("cluster=prod/"), Some("prod"));
        assert_eq!(cluster_of_prefix("p/other"), None);
        assert_eq!(cluster_of_prefix("p/cluster="), None);
    }
}
