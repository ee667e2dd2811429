//! Quota usage shared by the nodes: one row per root being counted (its storage key),
//! counted once by the first node that needs it, then moved by every change on any node.

use super::Cluster;

impl Cluster {
    /// The usage stored for `key` (bytes, files): `Some(None)` when nobody counted it yet,
    /// `None` when the database did not answer.
    pub async fn quota_usage(&self, key: &str) -> Option<Option<(u64, u64)>> {
        let rows = self
            .rows(
                "SELECT bytes, files FROM wharf_quota WHERE key = $1",
                &[&key],
            )
            .await?;
        Some(rows.first().map(|r| {
            let bytes: i64 = r.try_get(0).unwrap_or(0);
            let files: i64 = r.try_get(1).unwrap_or(0);
            (bytes.max(0) as u64, files.max(0) as u64)
        }))
    }

    /// Stores a fresh count of `key` unless another node stored one first; returns the
    /// usage that counts.
    pub async fn quota_counted(&self, key: &str, bytes: u64, files: u64) -> Option<(u64, u64)> {
        let (b, f) = (bytes as i64, files as i64);
        self.exec(
            "INSERT INTO wharf_quota (key, bytes, files) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO NOTHING",
            &[&key, &b, &f],
        )
        .await?;
        self.quota_usage(key).await.flatten()
    }

    /// A change under `path` (a storage key): every counted root that holds it moves.
    pub async fn quota_change(&self, path: &str, bytes: i64, files: i64) {
        self.exec(
            "UPDATE wharf_quota SET bytes = greatest(bytes + $2, 0),
                                    files = greatest(files + $3, 0)
             WHERE key = $1 OR starts_with($1, rtrim(key, '/') || '/')",
            &[&path, &bytes, &files],
        )
        .await;
    }

    /// Forgets the counts of the roots that hold `path` (or that `path` holds): they are
    /// counted again at the next need.
    pub async fn quota_forget(&self, path: &str) {
        self.exec(
            "DELETE FROM wharf_quota
             WHERE key = $1 OR starts_with($1, rtrim(key, '/') || '/')
                OR starts_with(key, rtrim($1, '/') || '/')",
            &[&path],
        )
        .await;
    }
}
