//! The S3 calls opendal keeps private, signed with rusty-s3 and sent with reqwest:
//! CreateMultipartUpload, UploadPart, UploadPartCopy, CompleteMultipartUpload,
//! AbortMultipartUpload, ListParts and ListMultipartUploads, with the parsing of their XML
//! replies; and [`Policy`], the one retry and timeout policy of every S3 request (opendal's
//! included). Knows keys, not paths; holds no upload state.

use std::time::{Duration, SystemTime};

use backon::BackoffBuilder;
use bytes::Bytes;
use rusty_s3::S3Action;

use super::creds::Secret;
use crate::config::StorageConfig;
use crate::error::Error;
use crate::http::redact;

use crate::limits::{
    S3_CONNECT_WITHIN, S3_FIRST_BACKOFF, S3_MAX_BACKOFF, S3_POOL_IDLE, S3_SIGNED_FOR,
};

/// Each retry waits this many times longer than the one before.
const BACKOFF_FACTOR: f32 = 2.0;

/// The one retry and timeout policy of S3 requests, whoever sends them: opendal (its
/// timeout and retry layers, see [`Policy::layers`]) and [`S3Api`] (its request loop)
/// share the same reqwest client, timeouts, number of retries and backoff.
#[derive(Debug, Clone, Copy)]
pub(super) struct Policy {
    /// How long one request (or one read or write of a body) may take.
    timeout: Duration,
    /// Retries after the first try, of network errors and server errors.
    retries: u32,
}

impl Policy {
    pub(super) fn of(c: &StorageConfig) -> Policy {
        Policy {
            timeout: Duration::from_secs(c.timeout.max(1)),
            retries: c.retries,
        }
    }

    /// No retry, for the unit tests.
    #[cfg(test)]
    pub(super) fn none() -> Policy {
        Policy {
            timeout: Duration::from_secs(5),
            retries: 0,
        }
    }

    /// The HTTP client of every request, opendal's and the signed ones.
    pub(super) fn http_client(&self) -> Result<reqwest::Client, String> {
        crate::http::client()
            .connect_timeout(S3_CONNECT_WITHIN)
            .read_timeout(self.timeout)
            .pool_idle_timeout(S3_POOL_IDLE)
            .build()
            .map_err(|e| format!("http client: {e}"))
    }

    /// The waits between tries: `retries` of them, then none (give up).
    fn backoff(&self) -> backon::ExponentialBackoff {
        backon::ExponentialBuilder::default()
            .with_min_delay(S3_FIRST_BACKOFF)
            .with_max_delay(S3_MAX_BACKOFF)
            .with_factor(BACKOFF_FACTOR)
            .with_max_times(self.retries as usize)
            .with_jitter()
            .build()
    }

    /// opendal's timeout and retry layers, set as [`Policy::backoff`] is.
    pub(super) fn layers(&self, op: opendal::Operator) -> opendal::Operator {
        op.layer(
            opendal::layers::TimeoutLayer::new()
                .with_timeout(self.timeout)
                .with_io_timeout(self.timeout),
        )
        .layer(
            opendal::layers::RetryLayer::new()
                .with_min_delay(S3_FIRST_BACKOFF)
                .with_max_delay(S3_MAX_BACKOFF)
                .with_factor(BACKOFF_FACTOR)
                .with_max_times(self.retries as usize)
                .with_jitter()
                // Its default notice logs the error's request URL as it is.
                .with_notify(|ev: opendal::layers::RetryEvent| {
                    tracing::warn!(
                        operation = %ev.op,
                        attempt = ev.attempt,
                        error = %redact(&ev.err.to_string()),
                        "object storage request retried"
                    );
                }),
        )
    }
}

/// The signer and sender of the multipart calls.
pub(super) struct S3Api {
    pub(super) bucket: rusty_s3::Bucket,
    pub(super) creds: rusty_s3::Credentials,
    http: reqwest::Client,
    /// The key prefix: empty, or ending in `/`.
    pub(super) prefix: String,
    policy: Policy,
}

impl std::fmt::Debug for S3Api {
    // rusty-s3's Credentials show the access key id.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Api")
            .field("bucket", &self.bucket.name())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// rusty-s3's view of a bucket: where its URLs go.
pub(super) fn bucket(
    endpoint: &str,
    path_style: bool,
    name: String,
    region: String,
) -> Result<rusty_s3::Bucket, String> {
    let url_style = if path_style {
        rusty_s3::UrlStyle::Path
    } else {
        rusty_s3::UrlStyle::VirtualHost
    };
    let endpoint_url = endpoint
        .parse()
        .map_err(|e| format!("endpoint `{endpoint}`: {e}"))?;
    rusty_s3::Bucket::new(endpoint_url, url_style, name.clone(), region)
        .map_err(|e| format!("bucket `{name}`: {e}"))
}

/// A multipart upload S3 lists.
#[derive(Debug)]
pub(super) struct UploadInfo {
    pub(super) key: String,
    pub(super) upload_id: String,
    pub(super) initiated: SystemTime,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ListUploadsXml {
    #[serde(rename = "Upload")]
    uploads: Vec<UploadXml>,
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct UploadXml {
    key: String,
    upload_id: String,
    initiated: String,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CopyPartXml {
    #[serde(rename = "ETag")]
    etag: String,
}

/// A reply the storage sent but wharf cannot read: logged with the operation and the cause,
/// answered as a local error (the storage answered; it is not unavailable).
fn unreadable(operation: &str, cause: &str) -> Error {
    tracing::warn!(operation, cause = %redact(cause), "unreadable object storage reply");
    Error::StorageReply
}

impl S3Api {
    pub(super) fn new(
        bucket: rusty_s3::Bucket,
        secret: &Secret,
        http: reqwest::Client,
        prefix: String,
        policy: Policy,
    ) -> S3Api {
        S3Api {
            bucket,
            creds: rusty_s3::Credentials::new(secret.key.clone(), secret.secret.clone()),
            http,
            prefix,
            policy,
        }
    }

    /// Sends a presigned request, retrying network errors and 5xx as [`Policy`] says;
    /// returns the first answer that is not a server error.
    pub(super) async fn request(
        &self,
        method: reqwest::Method,
        url: &url::Url,
        headers: &[(&str, &str)],
        body: Option<&Bytes>,
    ) -> Result<reqwest::Response, Error> {
        let mut backoff = self.policy.backoff();
        loop {
            let mut req = self.http.request(method.clone(), url.clone());
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(b) = body {
                req = req.body(b.clone());
            }
            let failure = match req.send().await {
                Ok(r) if !r.status().is_server_error() => return Ok(r),
                Ok(r) => format!("status {}", r.status()),
                // The URL is presigned; the log line shows it without its query.
                Err(e) => crate::http::error_text(&e.without_url()),
            };
            let Some(delay) = backoff.next() else {
                tracing::warn!(%method, url = %redact(url.as_str()), error = %failure, "object storage request failed");
                return Err(Error::Storage);
            };
            tokio::time::sleep(delay).await;
        }
    }

    /// A request whose answer must be a success; returns its headers and body.
    pub(super) async fn send(
        &self,
        method: reqwest::Method,
        url: url::Url,
        headers: &[(&str, &str)],
        body: Option<&Bytes>,
    ) -> Result<(reqwest::header::HeaderMap, Bytes), Error> {
        let r = self.request(method, &url, headers, body).await?;
        let status = r.status();
        if status.is_success() {
            let h = r.headers().clone();
            let body = r.bytes().await.map_err(|e| {
                tracing::warn!(error = %crate::http::error_text(&e.without_url()), "object storage reply cut short");
                Error::Storage
            })?;
            return Ok((h, body));
        }
        let text = r.text().await.unwrap_or_default();
        tracing::warn!(%status, error = %refusal_text(&text), "object storage refused a request");
        Err(refusal(status))
    }

    pub(super) async fn create(&self, key: &str) -> Result<String, Error> {
        let url =
            rusty_s3::actions::CreateMultipartUpload::new(&self.bucket, Some(&self.creds), key)
                .sign(S3_SIGNED_FOR);
        let (_, body) = self.send(reqwest::Method::POST, url, &[], None).await?;
        let text = String::from_utf8_lossy(&body);
        rusty_s3::actions::CreateMultipartUpload::parse_response(&text)
            .map(|r| r.upload_id().to_string())
            .map_err(|e| unreadable("CreateMultipartUpload", &e.to_string()))
    }

    pub(super) async fn upload_part(
        &self,
        key: &str,
        id: &str,
        n: usize,
        data: &Bytes,
    ) -> Result<String, Error> {
        let n = u16::try_from(n).map_err(|_| Error::NoSpace)?;
        let url = rusty_s3::actions::UploadPart::new(&self.bucket, Some(&self.creds), key, n, id)
            .sign(S3_SIGNED_FOR);
        let (headers, _) = self
            .send(reqwest::Method::PUT, url, &[], Some(data))
            .await?;
        headers
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or(Error::Storage)
    }

    pub(super) async fn upload_part_copy(
        &self,
        key: &str,
        id: &str,
        n: usize,
        source: &str,
        first: u64,
        last: u64,
    ) -> Result<String, Error> {
        let n = u16::try_from(n).map_err(|_| Error::NoSpace)?;
        let src = format!(
            "/{}/{}",
            self.bucket.name(),
            percent_encoding::utf8_percent_encode(source, KEY_SET)
        );
        let range = format!("bytes={first}-{last}");
        let mut action =
            rusty_s3::actions::UploadPart::new(&self.bucket, Some(&self.creds), key, n, id);
        action
            .headers_mut()
            .insert("x-amz-copy-source", src.clone());
        action
            .headers_mut()
            .insert("x-amz-copy-source-range", range.clone());
        let url = action.sign(S3_SIGNED_FOR);
        let (_, body) = self
            .send(
                reqwest::Method::PUT,
                url,
                &[
                    ("x-amz-copy-source", &src),
                    ("x-amz-copy-source-range", &range),
                ],
                None,
            )
            .await?;
        let parsed: CopyPartXml =
            quick_xml::de::from_str(&String::from_utf8_lossy(&body)).map_err(|_| Error::Storage)?;
        Ok(parsed.etag)
    }

    /// Sets an object's `mtime` metadata (rclone's convention: decimal Unix seconds) by
    /// copying it onto itself with its metadata replaced (CopyObject; up to 5 GiB).
    pub(super) async fn set_mtime(&self, key: &str, mtime: &str) -> Result<(), Error> {
        let src = format!(
            "/{}/{}",
            self.bucket.name(),
            percent_encoding::utf8_percent_encode(key, KEY_SET)
        );
        let headers = [
            ("x-amz-copy-source", src.as_str()),
            ("x-amz-metadata-directive", "REPLACE"),
            ("x-amz-meta-mtime", mtime),
        ];
        let mut action = rusty_s3::actions::PutObject::new(&self.bucket, Some(&self.creds), key);
        for (k, v) in headers {
            action.headers_mut().insert(k, v.to_string());
        }
        let url = action.sign(S3_SIGNED_FOR);
        self.send(reqwest::Method::PUT, url, &headers, None)
            .await
            .map(|_| ())
    }

    pub(super) async fn complete(
        &self,
        key: &str,
        id: &str,
        etags: &[String],
    ) -> Result<(), Error> {
        let action = rusty_s3::actions::CompleteMultipartUpload::new(
            &self.bucket,
            Some(&self.creds),
            key,
            id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(S3_SIGNED_FOR);
        let body = Bytes::from(action.body());
        self.send(reqwest::Method::POST, url, &[], Some(&body))
            .await
            .map(|_| ())
    }

    pub(super) async fn abort(&self, key: &str, id: &str) -> Result<(), Error> {
        let url =
            rusty_s3::actions::AbortMultipartUpload::new(&self.bucket, Some(&self.creds), key, id)
                .sign(S3_SIGNED_FOR);
        match self.send(reqwest::Method::DELETE, url, &[], None).await {
            Ok(_) | Err(Error::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Completed parts of an upload: (number, etag, size), in order.
    pub(super) async fn list_parts(
        &self,
        key: &str,
        id: &str,
    ) -> Result<Vec<(u16, String, u64)>, Error> {
        let mut out = Vec::new();
        let mut marker = None;
        loop {
            let mut action =
                rusty_s3::actions::ListParts::new(&self.bucket, Some(&self.creds), key, id);
            if let Some(m) = marker {
                action.set_part_number_marker(m);
            }
            let url = action.sign(S3_SIGNED_FOR);
            let (_, body) = self.send(reqwest::Method::GET, url, &[], None).await?;
            let page = super::xml::list_parts(&String::from_utf8_lossy(&body))
                .map_err(|cause| unreadable("ListParts", &cause))?;
            out.extend(page.parts);
            match page.next_marker {
                Some(m) if out.len() < 10_000 && marker != Some(m) => marker = Some(m),
                _ => break,
            }
        }
        out.sort_by_key(|p| p.0);
        Ok(out)
    }

    /// Multipart uploads in progress whose key starts with `prefix`
    /// (ListMultipartUploads: rusty-s3 has no action for it, so it is signed here).
    pub(super) async fn list_uploads(&self, prefix: &str) -> Result<Vec<UploadInfo>, Error> {
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut query: Vec<(&str, &str)> = vec![("prefix", prefix), ("uploads", "")];
            if let Some((k, u)) = &markers {
                query.push(("key-marker", k));
                query.push(("upload-id-marker", u));
            }
            query.sort();
            // rusty-s3's signer takes jiff's clock; the only place wharf names jiff.
            let url = rusty_s3::signing::sign(
                &jiff::Timestamp::now(),
                rusty_s3::Method::Get,
                self.bucket.base_url().clone(),
                self.creds.key(),
                self.creds.secret(),
                self.creds.token(),
                self.bucket.region(),
                S3_SIGNED_FOR.as_secs(),
                query.iter().copied(),
                std::iter::empty(),
            );
            let (_, body) = self.send(reqwest::Method::GET, url, &[], None).await?;
            let page: ListUploadsXml = quick_xml::de::from_str(&String::from_utf8_lossy(&body))
                .map_err(|e| unreadable("ListMultipartUploads", &e.to_string()))?;
            for u in page.uploads {
                let initiated = parse_initiated(&u.initiated);
                out.push(UploadInfo {
                    key: u.key,
                    upload_id: u.upload_id,
                    initiated,
                });
            }
            match (
                page.is_truncated,
                page.next_key_marker,
                page.next_upload_id_marker,
            ) {
                (true, Some(k), Some(u)) if out.len() < 100_000 => markers = Some((k, u)),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// A client error from S3 in the reply table's terms.
/// An upload's `Initiated` time (RFC 3339); unreadable ones count as oldest.
fn parse_initiated(text: &str) -> SystemTime {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(SystemTime::from)
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

pub(super) fn refusal(status: reqwest::StatusCode) -> Error {
    match status.as_u16() {
        404 => Error::NotFound,
        403 => Error::Access,
        _ => Error::Storage,
    }
}

/// What an S3 error reply says, for the log: its `Code` and `Message` only, since some
/// services echo the request's canonical form (with the credential) in other elements.
fn refusal_text(body: &str) -> String {
    match quick_xml::de::from_str::<ErrorXml>(body) {
        Ok(e) if !e.code.is_empty() => format!("{}: {}", e.code, redact(&e.message)),
        _ => redact(&body.chars().take(300).collect::<String>()),
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ErrorXml {
    code: String,
    message: String,
}

/// What a copy source's key keeps unescaped.
pub(super) const KEY_SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initiated_times_parse_with_and_without_fractions() {
        let at =
            |secs: u64, nanos: u32| SystemTime::UNIX_EPOCH + std::time::Duration::new(secs, nanos);
        assert_eq!(
            parse_initiated("2024-05-01T10:20:30Z"),
            at(1_714_558_830, 0)
        );
        assert_eq!(
            parse_initiated("2024-05-01T10:20:30.123Z"),
            at(1_714_558_830, 123_000_000)
        );
        assert_eq!(parse_initiated("yesterday"), SystemTime::UNIX_EPOCH);
    }

    #[test]
    fn refusal_text_keeps_code_and_message_only() {
        let body = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code>\
            <Message>The request signature we calculated does not match</Message>\
            <AWSAccessKeyId>GKKEY</AWSAccessKeyId><SignatureProvided>0123abcd</SignatureProvided>\
            <CanonicalRequest>GET /b/k X-Amz-Credential=GKKEY</CanonicalRequest></Error>";
        assert_eq!(
            refusal_text(body),
            "SignatureDoesNotMatch: The request signature we calculated does not match"
        );
        assert_eq!(
            refusal_text("<html>see http://x/?X-Amz-Signature=abc</html>"),
            "<html>see http://x/</html>"
        );
    }

    /// A failed presigned request: reqwest's error names the URL, query and all;
    /// `without_url` (what `S3Api::request` logs) does not.
    #[tokio::test]
    async fn failed_presigned_request_hides_its_url() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let bucket = rusty_s3::Bucket::new(
            endpoint.parse().unwrap(),
            rusty_s3::UrlStyle::Path,
            "b",
            "us-east-1",
        )
        .unwrap();
        let creds = rusty_s3::Credentials::new("GKKEY", "SECRETSECRET");
        let url = rusty_s3::actions::GetObject::new(&bucket, Some(&creds), "k").sign(S3_SIGNED_FOR);
        let e = crate::http::client()
            .build()
            .unwrap()
            .get(url.clone())
            .send()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("X-Amz-Credential=GKKEY"), "{e}");
        let shown = crate::http::error_text(&e.without_url());
        assert!(
            shown.contains("error sending request: "),
            "the cause is named: {shown}"
        );
        for shown in [shown, redact(url.as_str())] {
            assert!(!shown.contains("GKKEY"), "{shown}");
            assert!(!shown.contains("X-Amz-Signature"), "{shown}");
        }
    }
}
