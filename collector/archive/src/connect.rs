//! The S3 client of an archive, configured as the AWS tools are: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`/`AWS_DEFAULT_REGION`,
//! `AWS_ENDPOINT_URL` (S3-compatible stores) and the rest of `object_store`'s `AWS_*` keys
//! (web identity, container credentials, instance metadata); without keys in the environment,
//! the `AWS_PROFILE` (else `default`) profile of `~/.aws/credentials` and `~/.aws/config`
//! (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`). Errors are turned into ones that say
//! whether the bucket is missing, the credentials refused or the access denied.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};

use crate::error::{ArchiveError, Result};
use crate::location::ArchiveUrl;

/// Retries of a failed request (connection errors, 5xx) before giving up; a cut upload is
/// resumed by the next run. `KARMOR_S3_RETRIES` overrides it.
pub const DEFAULT_RETRIES: usize = 5;

/// An archive location with its client.
#[derive(Debug)]
pub struct Remote {
    /// The client.
    pub store: AmazonS3,
    /// Where the archive is.
    pub url: ArchiveUrl,
    /// The endpoint requests go to, for messages.
    pub endpoint: String,
}

/// The credentials and settings of one profile of `~/.aws/credentials` and `~/.aws/config`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`, `region`,
    /// `endpoint_url`, as found.
    pub values: HashMap<String, String>,
}

/// Reads profile `name` from an AWS credentials file (`[name]` sections) and config file
/// (`[profile name]`, or `[default]`). Missing files add nothing.
pub fn read_profile(credentials: &Path, config: &Path, name: &str) -> Profile {
    let mut values = HashMap::new();
    let config_section = if name == "default" {
        "default".to_string()
    } else {
        format!("profile {name}")
    };
    for (file, section) in [(config, config_section.as_str()), (credentials, name)] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let mut inside = false;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(head) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                inside = head.trim() == section;
                continue;
            }
            if let (true, Some((k, v))) = (inside, line.split_once('=')) {
                values.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
    }
    Profile { values }
}

fn home_file(env: &str, rel: &str) -> Option<PathBuf> {
    std::env::var_os(env)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(rel)))
}

/// Connects to the archive at `url` with the AWS environment chain (see the module docs).
pub fn connect(url: &ArchiveUrl) -> Result<Remote> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(&url.bucket);
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let profile_name = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let profile = match (
        home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"),
        home_file("AWS_CONFIG_FILE", ".aws/config"),
    ) {
        (Some(c), Some(f)) => read_profile(&c, &f, &profile_name),
        _ => Profile::default(),
    };
    let p = |k: &str| profile.values.get(k).cloned();
    if env("AWS_ACCESS_KEY_ID").is_none() {
        if let (Some(id), Some(secret)) = (p("aws_access_key_id"), p("aws_secret_access_key")) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
            if let Some(token) = p("aws_session_token") {
                builder = builder.with_token(token);
            }
        }
    }
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| p("region"))
        .unwrap_or_else(|| "us-east-1".into());
    builder = builder.with_region(&region);
    let endpoint = env("AWS_ENDPOINT_URL_S3")
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .or_else(|| env("AWS_ENDPOINT"))
        .or_else(|| p("endpoint_url"));
    let shown = match &endpoint {
        Some(e) => {
            builder = builder
                .with_endpoint(e)
                .with_allow_http(e.starts_with("http://"));
            e.clone()
        }
        None => format!("https://s3.{region}.amazonaws.com"),
    };
    let retries = env("KARMOR_S3_RETRIES")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_RETRIES);
    builder = builder.with_retry(RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: retries,
        retry_timeout: Duration::from_secs(120),
    });
    let store = builder.build().map_err(|e| ArchiveError::Store {
        url: url.to_string(),
        detail: format!("cannot configure the S3 client: {e}"),
    })?;
    Ok(Remote {
        store,
        url: url.clone(),
        endpoint: shown,
    })
}

/// `<Code>` and `<Message>` of an S3 error body found in `text`, else `text`.
fn s3_detail(text: &str) -> String {
    let tag = |t: &str| {
        let open = format!("<{t}>");
        let close = format!("</{t}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&close)? + start;
        Some(text[start..end].to_string())
    };
    match (tag("Code"), tag("Message")) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        _ => text.to_string(),
    }
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cur = c.source();
    }
    text
}

impl Remote {
    /// Turns an `object_store` error on `key` into one that says what to do about it.
    pub fn error(&self, e: object_store::Error, key: &str) -> ArchiveError {
        let text = chain(&e);
        let detail = s3_detail(&text);
        let credentials = [
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "InvalidToken",
            "InvalidClientTokenId",
        ];
        if text.contains("NoSuchBucket") {
            ArchiveError::MissingBucket {
                bucket: self.url.bucket.clone(),
                endpoint: self.endpoint.clone(),
            }
        } else if credentials.iter().any(|c| text.contains(c)) {
            ArchiveError::Credentials {
                bucket: self.url.bucket.clone(),
                endpoint: self.endpoint.clone(),
                detail,
            }
        } else if matches!(
            e,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        ) {
            ArchiveError::Denied {
                url: self.url.url_of(key),
                endpoint: self.endpoint.clone(),
                detail,
            }
        } else {
            ArchiveError::Store {
                url: self.url.url_of(key),
                detail: text,
            }
        }
    }

    /// Checks that the bucket exists and the credentials may list the prefix (one request),
    /// so that a missing bucket or refused credentials are said before anything is done.
    pub async fn check(&self) -> Result<()> {
        let prefix = ObjectPath::from(self.url.prefix.as_str());
        match self.store.list_with_delimiter(Some(&prefix)).await {
            Ok(_) => Ok(()),
            // Listing a prefix never finds "nothing": a 404 is the bucket.
            Err(object_store::Error::NotFound { .. }) => Err(ArchiveError::MissingBucket {
                bucket: self.url.bucket.clone(),
                endpoint: self.endpoint.clone(),
            }),
            Err(e) => Err(self.error(e, &self.url.prefix)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_come_from_both_files() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let creds = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(
            &creds,
            "[default]\naws_access_key_id = D\n\n[audit]\naws_access_key_id=AK\naws_secret_access_key = SK\n",
        )?;
        std::fs::write(
            &config,
            "[default]\nregion = us-east-1\n[profile audit]\nregion = eu-west-3\nendpoint_url = http://127.0.0.1:9000\n",
        )?;
        let p = read_profile(&creds, &config, "audit");
        assert_eq!(
            p.values.get("aws_access_key_id").map(String::as_str),
            Some("AK")
        );
        assert_eq!(
            p.values.get("aws_secret_access_key").map(String::as_str),
            Some("SK")
        );
        assert_eq!(
            p.values.get("region").map(String::as_str),
            Some("eu-west-3")
        );
        assert_eq!(
            p.values.get("endpoint_url").map(String::as_str),
            Some("http://127.0.0.1:9000")
        );
        let d = read_profile(&creds, &config, "default");
        assert_eq!(
            d.values.get("aws_access_key_id").map(String::as_str),
            Some("D")
        );
        assert_eq!(
            d.values.get("region").map(String::as_str),
            Some("us-east-1")
        );
        let none = read_profile(&dir.path().join("x"), &dir.path().join("y"), "audit");
        assert!(none.values.is_empty());
        Ok(())
    }

    #[test]
    fn s3_error_bodies_give_code_and_message() {
        let body = "Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?><Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message></Error>";
        assert_eq!(
            s3_detail(body),
            "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records."
        );
        assert_eq!(s3_detail("connection refused"), "connection refused");
    }
}
