//! Objects whose key ends in whitespace, reached with wharf's own signed requests.
//!
//! opendal 0.59 trims whitespace at both ends of every path it is handed (`normalize_path`;
//! its RFC 7799 drops that), so `STOR "name "` would store `name`. A leading `/` keeps
//! leading whitespace (it trims first, then strips the `/`; see `store::od`), but nothing
//! keeps the trailing whitespace of a file's key: for those keys, HEAD, the ranged GET, PUT
//! and CopyObject are sent here, under the same retry and timeout policy. Directory keys end
//! in `/` and never need it. Every delete on S3 is a DELETE from here (see
//! `ObjectStore::delete_key`). Knows keys, not paths.

use bytes::Bytes;
use futures_util::TryStreamExt;
use rusty_s3::S3Action;

use super::api::{KEY_SET, S3Api};
use super::store::{ByteStream, Head, parse_mtime};
use crate::error::Error;
use crate::limits::S3_SIGNED_FOR;

/// Whether opendal would change `rel` (a key below the store's prefix): it ends in
/// whitespace, which opendal trims.
pub(super) fn needed(rel: &str) -> bool {
    rel.ends_with(char::is_whitespace)
}

impl S3Api {
    /// HEAD: the object's size and times, `None` when there is no such object.
    pub(super) async fn head(&self, key: &str) -> Result<Option<Head>, Error> {
        let url = rusty_s3::actions::HeadObject::new(&self.bucket, Some(&self.creds), key)
            .sign(S3_SIGNED_FOR);
        let r = self.request(reqwest::Method::HEAD, &url, &[], None).await?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !r.status().is_success() {
            return Err(super::api::refusal(r.status()));
        }
        let h = r.headers();
        let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
        Ok(Some(Head {
            size: text("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            stored: text("last-modified")
                .and_then(|v| httpdate::parse_http_date(v).ok())
                .map(super::upload::unix)
                .unwrap_or(0),
            set: text("x-amz-meta-mtime").and_then(parse_mtime),
        }))
    }

    /// GET from `offset` on, streamed: the stream and the object's length; `None` when
    /// there is no such object. At or past the end (416) the stream is empty.
    pub(super) async fn get(
        &self,
        key: &str,
        offset: u64,
    ) -> Result<Option<(ByteStream, u64)>, Error> {
        let url = rusty_s3::actions::GetObject::new(&self.bucket, Some(&self.creds), key)
            .sign(S3_SIGNED_FOR);
        let range = format!("bytes={offset}-");
        let r = self
            .request(reqwest::Method::GET, &url, &[("range", &range)], None)
            .await?;
        let h = r.headers();
        let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
        // "bytes 0-9/10" or, for a 416, "bytes */10": the length follows the `/`.
        let total = text("content-range")
            .and_then(|v| v.rsplit('/').next())
            .and_then(|v| v.parse::<u64>().ok());
        match r.status().as_u16() {
            404 => Ok(None),
            416 => Ok(Some((
                Box::pin(futures_util::stream::empty()),
                total.unwrap_or(offset),
            ))),
            200 | 206 => {
                let len = total
                    .or_else(|| text("content-length").and_then(|v| v.parse().ok()))
                    .unwrap_or(0);
                let body = r.bytes_stream().map_err(|e| {
                    tracing::warn!(error = %crate::http::error_text(&e.without_url()), "object storage reply cut short");
                    std::io::Error::other("storage")
                });
                Ok(Some((Box::pin(body), len)))
            }
            _ => Err(super::api::refusal(r.status())),
        }
    }

    /// PUT: the whole object in one request.
    pub(super) async fn put(&self, key: &str, body: Bytes) -> Result<(), Error> {
        let url = rusty_s3::actions::PutObject::new(&self.bucket, Some(&self.creds), key)
            .sign(S3_SIGNED_FOR);
        self.send(reqwest::Method::PUT, url, &[], Some(&body))
            .await
            .map(|_| ())
    }

    /// DELETE (S3 answers 204 whether or not the key existed).
    pub(super) async fn delete(&self, key: &str) -> Result<(), Error> {
        let url = rusty_s3::actions::DeleteObject::new(&self.bucket, Some(&self.creds), key)
            .sign(S3_SIGNED_FOR);
        self.send(reqwest::Method::DELETE, url, &[], None)
            .await
            .map(|_| ())
    }

    /// CopyObject, metadata included (up to 5 GiB, as opendal's copy).
    pub(super) async fn copy(&self, from: &str, to: &str) -> Result<(), Error> {
        let src = format!(
            "/{}/{}",
            self.bucket.name(),
            percent_encoding::utf8_percent_encode(from, KEY_SET)
        );
        let mut action = rusty_s3::actions::PutObject::new(&self.bucket, Some(&self.creds), to);
        action
            .headers_mut()
            .insert("x-amz-copy-source", src.clone());
        let url = action.sign(S3_SIGNED_FOR);
        self.send(
            reqwest::Method::PUT,
            url,
            &[("x-amz-copy-source", &src)],
            None,
        )
        .await
        .map(|_| ())
    }
}
