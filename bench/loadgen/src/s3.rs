//! A plain S3 client for the benchmark's "direct" rows: the same operations wharf does on
//! an S3 root (GET, multipart PUT, many small GETs), done straight against the store with
//! presigned requests, so the table shows what wharf's FTP layer costs.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::stats::percentile_ms;

/// A bucket and the key to reach it.
#[derive(Clone)]
pub struct S3 {
    bucket: rusty_s3::Bucket,
    creds: rusty_s3::Credentials,
    http: reqwest::Client,
}

const SIGNED_FOR: Duration = Duration::from_secs(3600);

impl S3 {
    /// `credentials` holds `access_key_id = ...` and `secret_access_key = ...` lines.
    pub fn new(
        endpoint: &str,
        bucket: &str,
        region: &str,
        credentials: &Path,
    ) -> Result<S3, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let text = std::fs::read_to_string(credentials).map_err(|e| e.to_string())?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.split_once('=').filter(|(k, _)| k.trim() == name))
                .map(|(_, v)| v.trim().to_string())
                .ok_or(format!("{name} missing"))
        };
        let bucket = rusty_s3::Bucket::new(
            endpoint.parse().map_err(|e| format!("{e}"))?,
            rusty_s3::UrlStyle::Path,
            bucket.to_string(),
            region.to_string(),
        )
        .map_err(|e| e.to_string())?;
        Ok(S3 {
            bucket,
            creds: rusty_s3::Credentials::new(field("access_key_id")?, field("secret_access_key")?),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .build()
                .map_err(|e| e.to_string())?,
        })
    }

    fn get_url(&self, key: &str) -> url::Url {
        use rusty_s3::S3Action;
        rusty_s3::actions::GetObject::new(&self.bucket, Some(&self.creds), key).sign(SIGNED_FOR)
    }

    async fn check(r: reqwest::Response) -> Result<reqwest::Response, String> {
        if r.status().is_success() {
            Ok(r)
        } else {
            Err(format!(
                "{} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ))
        }
    }

    /// Downloads `key` once; returns the bytes.
    async fn get(&self, url: &url::Url) -> Result<u64, String> {
        let r = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let mut body = S3::check(r).await?.bytes_stream();
        let mut n = 0;
        while let Some(chunk) = body.next().await {
            n += chunk.map_err(|e| e.to_string())?.len() as u64;
        }
        Ok(n)
    }
}

/// `s3-retr`: GET `key` `count` times, one stream each: MB/s.
pub async fn retr(s3: S3, key: &str, count: usize) -> Result<Value, String> {
    let url = s3.get_url(key);
    let mut runs = Vec::new();
    for _ in 0..count {
        let t0 = Instant::now();
        let bytes = s3.get(&url).await?;
        let secs = t0.elapsed().as_secs_f64();
        runs.push(json!({"bytes": bytes, "secs": secs, "mb_per_s": bytes as f64 / secs / 1e6}));
    }
    Ok(crate::transfer::summary(runs))
}

/// `s3-stor`: a multipart upload of `size` bytes in `part`-byte parts, `in_flight` at
/// once (what wharf does with the same settings): MB/s.
pub async fn stor(
    s3: S3,
    key: &str,
    size: u64,
    part: usize,
    in_flight: usize,
    count: usize,
) -> Result<Value, String> {
    use rusty_s3::S3Action;
    let data = Bytes::from(crate::transfer::pattern(part));
    let mut runs = Vec::new();
    for _ in 0..count {
        let t0 = Instant::now();
        let url = rusty_s3::actions::CreateMultipartUpload::new(&s3.bucket, Some(&s3.creds), key)
            .sign(SIGNED_FOR);
        let r = s3.http.post(url).send().await.map_err(|e| e.to_string())?;
        let text = S3::check(r)
            .await?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let id = rusty_s3::actions::CreateMultipartUpload::parse_response(&text)
            .map_err(|e| e.to_string())?
            .upload_id()
            .to_string();
        let parts = size.div_ceil(part as u64) as usize;
        let mut etags = vec![String::new(); parts];
        let mut set = JoinSet::new();
        for n in 0..parts {
            while set.len() >= in_flight {
                let (i, e) = set
                    .join_next()
                    .await
                    .unwrap()
                    .map_err(|e| e.to_string())??;
                etags[i] = e;
            }
            let len = (size - (n * part) as u64).min(part as u64) as usize;
            let url = rusty_s3::actions::UploadPart::new(
                &s3.bucket,
                Some(&s3.creds),
                key,
                (n + 1) as u16,
                &id,
            )
            .sign(SIGNED_FOR);
            let (http, body) = (s3.http.clone(), data.slice(..len));
            set.spawn(async move {
                let r = http
                    .put(url)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let r = S3::check(r).await?;
                let etag = r
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                Ok::<_, String>((n, etag))
            });
        }
        while let Some(done) = set.join_next().await {
            let (i, e) = done.map_err(|e| e.to_string())??;
            etags[i] = e;
        }
        let action = rusty_s3::actions::CompleteMultipartUpload::new(
            &s3.bucket,
            Some(&s3.creds),
            key,
            &id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(SIGNED_FOR);
        let r = s3
            .http
            .post(url)
            .body(action.body())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        S3::check(r).await?;
        let secs = t0.elapsed().as_secs_f64();
        runs.push(json!({"bytes": size, "secs": secs, "mb_per_s": size as f64 / secs / 1e6}));
    }
    Ok(crate::transfer::summary(runs))
}

/// `s3-smallfiles`: `sessions` clients each GET `key` `files` times (keep-alive, as S3
/// clients do): files/s.
pub async fn smallfiles(s3: S3, key: &str, sessions: usize, files: usize) -> Value {
    let url = s3.get_url(key);
    let start = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..sessions {
        let (s3, url) = (s3.clone(), url.clone());
        set.spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            for _ in 0..files {
                let t0 = Instant::now();
                match s3.get(&url).await {
                    Ok(_) => lat.push(t0.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (lat, errors)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(Ok((l, e))) = set.join_next().await {
        latencies.extend(l);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    json!({
        "sessions": sessions,
        "files": latencies.len(),
        "secs": secs,
        "files_per_s": latencies.len() as f64 / secs,
        "p50_ms": percentile_ms(&mut latencies, 50.0),
        "p99_ms": percentile_ms(&mut latencies, 99.0),
        "errors": errors,
    })
}

/// `s3-fill`: PUTs `count` 3-byte objects named `prefix` + number, 64 at a time.
pub async fn fill(s3: S3, prefix: &str, count: usize) -> Result<Value, String> {
    use rusty_s3::S3Action;
    let start = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..count {
        while set.len() >= 64 {
            set.join_next()
                .await
                .unwrap()
                .map_err(|e| e.to_string())??;
        }
        let key = format!("{prefix}f{i:07}");
        let url =
            rusty_s3::actions::PutObject::new(&s3.bucket, Some(&s3.creds), &key).sign(SIGNED_FOR);
        let http = s3.http.clone();
        set.spawn(async move {
            let r = http
                .put(url)
                .body("abc")
                .send()
                .await
                .map_err(|e| e.to_string())?;
            S3::check(r).await.map(|_| ())
        });
    }
    while let Some(done) = set.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(json!({"objects": count, "secs": start.elapsed().as_secs_f64()}))
}
