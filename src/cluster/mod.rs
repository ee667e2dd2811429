//! Shared state of several wharf nodes, in PostgreSQL (`[cluster] database_url`): the node
//! registry (heartbeats: a dead node's sessions stop counting), session counts per client
//! address and per user (limits hold across nodes), bans (a ban made on one node reaches
//! the others within a poll, half a second), and per-path upload locks
//! (`pg_try_advisory_lock` on a connection held for the upload: a killed node's locks end
//! with its connections), and quota usage per root (`wharf_quota`, counted once, then
//! kept by each change). Without `[cluster]` none of this runs.
//!
//! Every database call has a timeout; when the database is unreachable, logins follow
//! `when_unavailable` (refuse, or allow with this node's own limits) and the pool
//! reconnects by itself when it returns.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use deadpool_postgres::{Object, Pool};

use crate::limits::CLUSTER_OP_WITHIN;
use crate::limits::Refusal;

mod locks;
pub use locks::UploadLock;
mod quota;

pub use crate::config::{ClusterConfig, Unavailable};

/// Why a cluster check said no.
#[derive(Debug)]
pub enum Denied {
    /// A limit across the nodes; the text goes into the 421 reply.
    Limit(Refusal),
    /// The database did not answer and the policy is `refuse`.
    Unavailable,
}

/// Schema changes, applied in order once each (`wharf_schema` keeps the version).
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE wharf_nodes (
        name text PRIMARY KEY,
        started timestamptz NOT NULL DEFAULT now(),
        seen timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE wharf_sessions (
        node text NOT NULL,
        id bigint NOT NULL,
        client inet NOT NULL,
        username text,
        since timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (node, id)
    );
    CREATE INDEX wharf_sessions_client ON wharf_sessions (client);
    CREATE INDEX wharf_sessions_username ON wharf_sessions (username);
    CREATE TABLE wharf_bans (
        client inet PRIMARY KEY,
        until timestamptz NOT NULL,
        node text NOT NULL
    );
",
    "
    CREATE TABLE wharf_failures (
        client inet NOT NULL,
        username text NOT NULL,
        count int NOT NULL,
        first timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (client, username)
    );
",
    "
    CREATE TABLE wharf_quota (
        key text PRIMARY KEY,
        bytes bigint NOT NULL,
        files bigint NOT NULL,
        counted timestamptz NOT NULL DEFAULT now()
    );
",
];

/// Serialises migrations between nodes starting at once.
const MIGRATION_LOCK: i64 = 0x7768_6172_6600_0001;

/// A node's link to the shared state.
pub struct Cluster {
    pool: Pool,
    pub node: String,
    policy: Unavailable,
    node_timeout: Duration,
    heartbeat: Duration,
    /// Migrated and this node's old rows removed: the state may be used.
    ready: AtomicBool,
    /// Bans this node took from the database (lifted here when lifted there).
    learned: Mutex<HashSet<IpAddr>>,
    /// Where the polls and the background lock releases run.
    tasks: crate::tasks::Tasks,
    /// This node's live sessions, re-registered when the database returns after an outage.
    who: std::sync::OnceLock<Weak<crate::observe::Who>>,
    /// This node's live uploads and their locks, taken again when the database returns.
    locks: locks::Locks,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.node).finish()
    }
}

impl Cluster {
    /// Builds the pool (no connection yet: the database may come later).
    pub fn new(c: &ClusterConfig, tasks: crate::tasks::Tasks) -> Result<Arc<Cluster>, String> {
        let url = c
            .database_url
            .clone()
            .ok_or("[cluster] needs database_url")?;
        let mut pg = deadpool_postgres::Config::new();
        pg.url = Some(url);
        pg.pool = Some(deadpool_postgres::PoolConfig {
            max_size: c.pool_size.max(2),
            timeouts: deadpool_postgres::Timeouts {
                wait: Some(CLUSTER_OP_WITHIN),
                create: Some(CLUSTER_OP_WITHIN),
                recycle: Some(CLUSTER_OP_WITHIN),
            },
            ..Default::default()
        });
        let pool = pg
            .create_pool(
                Some(deadpool_postgres::Runtime::Tokio1),
                tokio_postgres::NoTls,
            )
            .map_err(|e| format!("[cluster] database_url: {e}"))?;
        let node = c.node.clone().unwrap_or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "wharf".into())
        });
        Ok(Arc::new(Cluster {
            pool,
            node,
            policy: c.when_unavailable,
            node_timeout: Duration::from_secs(c.node_timeout.max(1)),
            heartbeat: Duration::from_secs(c.heartbeat.max(1)),
            ready: AtomicBool::new(false),
            learned: Mutex::new(HashSet::new()),
            tasks,
            who: std::sync::OnceLock::new(),
            locks: locks::Locks::default(),
        }))
    }

    async fn client(&self) -> Option<Object> {
        match self.pool.get().await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "shared state (PostgreSQL) unreachable");
                self.lost();
                None
            }
        }
    }

    /// The database is away (unreachable, timed out, connection closed): nothing is counted
    /// there until the heartbeat has prepared it again and re-registered this node's live
    /// sessions, whatever happened to its rows meanwhile.
    fn lost(&self) {
        if self.ready.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                "shared state lost; this node's sessions are registered again when it returns"
            );
        }
    }

    /// A database that came back without wharf's tables (restored, or restarted before
    /// its last commits were written) is prepared again by the next heartbeat.
    fn schema_lost(&self, e: &tokio_postgres::Error) {
        if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) {
            self.ready.store(false, Ordering::Relaxed);
        }
    }

    /// Runs one statement with the timeout; `None` when the database did not answer.
    async fn exec(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Option<u64> {
        let c = self.client().await?;
        match tokio::time::timeout(CLUSTER_OP_WITHIN, c.execute(sql, params)).await {
            Ok(Ok(n)) => Some(n),
            Ok(Err(e)) => {
                self.schema_lost(&e);
                if e.is_closed() {
                    self.lost();
                }
                tracing::warn!(error = %e, "shared state statement failed");
                None
            }
            Err(_) => {
                tracing::warn!("shared state statement timed out");
                self.lost();
                None
            }
        }
    }

    /// Runs one query with the timeout; its rows, or `None` when the database did not
    /// answer.
    async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Option<Vec<tokio_postgres::Row>> {
        let c = self.client().await?;
        match tokio::time::timeout(CLUSTER_OP_WITHIN, c.query(sql, params)).await {
            Ok(Ok(rows)) => Some(rows),
            Ok(Err(e)) => {
                self.schema_lost(&e);
                if e.is_closed() {
                    self.lost();
                }
                tracing::warn!(error = %e, "shared state query failed");
                None
            }
            Err(_) => {
                self.lost();
                None
            }
        }
    }

    /// The first column of a one-row query (a count).
    async fn count(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Option<i64> {
        self.rows(sql, params).await?.first()?.try_get(0).ok()
    }

    /// Applies the migrations and forgets this node's sessions from an earlier run.
    async fn prepare(&self) -> Result<(), String> {
        let mut c = self.pool.get().await.map_err(|e| e.to_string())?;
        let tx = c.transaction().await.map_err(|e| e.to_string())?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(|e| e.to_string())?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS wharf_schema (version int NOT NULL)")
            .await
            .map_err(|e| e.to_string())?;
        let version: i64 = tx
            .query_one(
                "SELECT coalesce(max(version), 0)::bigint FROM wharf_schema",
                &[],
            )
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| e.to_string())?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.batch_execute(sql).await.map_err(|e| e.to_string())?;
            tx.execute("INSERT INTO wharf_schema VALUES ($1)", &[&(i as i32 + 1)])
                .await
                .map_err(|e| e.to_string())?;
        }
        tx.execute("DELETE FROM wharf_sessions WHERE node = $1", &[&self.node])
            .await
            .map_err(|e| e.to_string())?;
        tx.execute(
            "INSERT INTO wharf_nodes (name) VALUES ($1)
             ON CONFLICT (name) DO UPDATE SET started = now(), seen = now()",
            &[&self.node],
        )
        .await
        .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())
    }

    /// Connects and migrates now if it can (start-up says whether it could).
    /// After an outage, this node's live sessions are registered before anything is
    /// counted again, and once more right after (sessions admitted meanwhile).
    pub async fn start(&self) -> Result<(), String> {
        let r = tokio::time::timeout(crate::limits::CLUSTER_JOIN_WITHIN, async {
            self.prepare().await?;
            let n = self.register_live().await?;
            self.retake_locks().await?;
            Ok(n)
        })
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
        if let Ok(n) = r {
            self.ready.store(true, Ordering::Relaxed);
            let again = self.register_live().await.unwrap_or(0);
            tracing::info!(node = %self.node, sessions = n.max(again), "joined the cluster");
        }
        r.map(|_| ())
    }

    /// Records every live session of this node (address and user) in one statement and
    /// marks them registered; how many.
    async fn register_live(&self) -> Result<usize, String> {
        let Some(who) = self.who.get().and_then(Weak::upgrade) else {
            return Ok(0);
        };
        let views = who.all();
        if views.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = views.iter().map(|v| v.id as i64).collect();
        let clients: Vec<IpAddr> = views.iter().map(|v| v.client).collect();
        let users: Vec<Option<String>> = views
            .iter()
            .map(|v| v.user.lock().ok().and_then(|u| u.clone()))
            .collect();
        let c = self.pool.get().await.map_err(|e| e.to_string())?;
        c.execute(
            "INSERT INTO wharf_sessions (node, id, client, username)
             SELECT $1, * FROM unnest($2::bigint[], $3::inet[], $4::text[])
             ON CONFLICT (node, id) DO UPDATE
             SET client = EXCLUDED.client, username = EXCLUDED.username",
            &[&self.node, &ids, &clients, &users],
        )
        .await
        .map_err(|e| e.to_string())?;
        for v in &views {
            v.registered.store(true, Ordering::Relaxed);
        }
        Ok(views.len())
    }

    /// The heartbeat (and late preparation) and the ban poll, for as long as the server
    /// lives.
    pub fn spawn_tasks(
        self: &Arc<Self>,
        guard: Weak<crate::limits::Guard>,
        who: Weak<crate::observe::Who>,
    ) {
        let _ = self.who.set(who);
        let me = self.clone();
        let alive = guard.clone();
        self.tasks.spawn_until_ending(async move {
            let mut tick = tokio::time::interval(me.heartbeat);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if alive.strong_count() == 0 {
                    return;
                }
                if !me.ready.load(Ordering::Relaxed) {
                    if let Err(e) = me.start().await {
                        tracing::warn!(error = %e, "shared state still unreachable");
                    }
                    continue;
                }
                // A lock whose connection died without the database going away.
                if let Err(e) = me.retake_locks().await {
                    tracing::warn!(error = %e, "upload locks not taken again yet");
                }
                me.exec(
                    "INSERT INTO wharf_nodes (name) VALUES ($1)
                     ON CONFLICT (name) DO UPDATE SET seen = now()",
                    &[&me.node],
                )
                .await;
                // Failure counts older than any sensible window.
                me.exec(
                    "DELETE FROM wharf_failures WHERE first < now() - interval '1 day'",
                    &[],
                )
                .await;
            }
        });
        let me = self.clone();
        self.tasks.spawn_until_ending(async move {
            let mut tick = tokio::time::interval(crate::limits::CLUSTER_BAN_POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(guard) = guard.upgrade() else {
                    return;
                };
                if me.ready.load(Ordering::Relaxed) {
                    me.sync_bans(&guard).await;
                }
            }
        });
    }

    /// Takes the bans of every node into this node's guard.
    async fn sync_bans(&self, guard: &crate::limits::Guard) {
        let Some(c) = self.client().await else {
            return;
        };
        let rows = match tokio::time::timeout(
            CLUSTER_OP_WITHIN,
            c.query(
                "SELECT client, extract(epoch FROM until - now())::float8 FROM wharf_bans
                 WHERE until > now()",
                &[],
            ),
        )
        .await
        {
            Ok(Ok(rows)) => rows,
            _ => return,
        };
        let now = Instant::now();
        let mut seen = HashSet::new();
        for row in rows {
            let (Ok(ip), Ok(secs)) = (row.try_get::<_, IpAddr>(0), row.try_get::<_, f64>(1)) else {
                continue;
            };
            seen.insert(ip);
            if guard.banned(ip, now).is_none() {
                guard.ban(ip, Duration::from_secs_f64(secs.max(0.0)), now);
            }
        }
        let mut learned = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        for gone in learned.difference(&seen) {
            guard.unban(*gone);
        }
        *learned = seen;
    }

    /// Tells the other nodes about a ban made here (the failures that led to it start
    /// over).
    pub async fn publish_ban(&self, ip: IpAddr, dur: Duration) {
        self.exec("DELETE FROM wharf_failures WHERE client = $1", &[&ip])
            .await;
        self.exec(
            "INSERT INTO wharf_bans (client, until, node)
             VALUES ($1, now() + make_interval(secs => $2), $3)
             ON CONFLICT (client) DO UPDATE SET until = greatest(wharf_bans.until, EXCLUDED.until)",
            &[&ip, &dur.as_secs_f64(), &self.node],
        )
        .await;
    }

    /// Counts a failed login of `user` from `client` on every node; returns the address's
    /// failures within `window` across the cluster (`None` when the database is away).
    pub async fn failed(&self, client: IpAddr, user: &str, window: Duration) -> Option<u32> {
        let secs = window.as_secs_f64();
        let user = user.chars().take(256).collect::<String>();
        self.exec(
            "INSERT INTO wharf_failures (client, username, count) VALUES ($1, $2, 1)
             ON CONFLICT (client, username) DO UPDATE SET
               count = CASE WHEN wharf_failures.first < now() - make_interval(secs => $3)
                       THEN 1 ELSE wharf_failures.count + 1 END,
               first = CASE WHEN wharf_failures.first < now() - make_interval(secs => $3)
                       THEN now() ELSE wharf_failures.first END",
            &[&client, &user, &secs],
        )
        .await?;
        let n = self
            .count(
                "SELECT coalesce(sum(count), 0)::bigint FROM wharf_failures
                 WHERE client = $1 AND first >= now() - make_interval(secs => $2)",
                &[&client, &secs],
            )
            .await?;
        Some(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// A configured user logged in from `client`: that name's failures there are forgiven
    /// on every node (anonymous logins forgive nothing).
    pub async fn forgive(&self, client: IpAddr, user: &str) {
        self.exec(
            "DELETE FROM wharf_failures WHERE client = $1 AND username = $2",
            &[&client, &user],
        )
        .await;
    }

    /// The nodes the database knows and how many seconds ago each was last seen; `None`
    /// when the database does not answer.
    pub async fn nodes(&self) -> Option<Vec<(String, f64)>> {
        let rows = self
            .rows(
                "SELECT name, extract(epoch FROM now() - seen)::float8 FROM wharf_nodes ORDER BY name",
                &[],
            )
            .await?;
        Some(
            rows.iter()
                .map(|r| {
                    (
                        r.try_get::<_, String>(0).unwrap_or_default(),
                        r.try_get::<_, f64>(1).unwrap_or(0.0),
                    )
                })
                .collect(),
        )
    }

    /// Lifts a ban on every node.
    pub async fn lift_ban(&self, ip: IpAddr) {
        self.exec("DELETE FROM wharf_bans WHERE client = $1", &[&ip])
            .await;
    }

    fn unavailable(&self) -> Result<(), Denied> {
        match self.policy {
            Unavailable::Local => Ok(()),
            Unavailable::Refuse => Err(Denied::Unavailable),
        }
    }

    /// Counts a new session from `client` across the nodes (`max` > 0 only); refuses it
    /// past the limit. `Ok(true)`: the session was registered and must be ended.
    pub async fn admit(&self, id: u64, client: IpAddr, max: usize) -> Result<bool, Denied> {
        let record = "INSERT INTO wharf_sessions (node, id, client) VALUES ($1, $2, $3)
             ON CONFLICT (node, id) DO UPDATE SET client = EXCLUDED.client";
        let over = || Denied::Limit(Refusal::per_ip(max));
        let undo = "DELETE FROM wharf_sessions WHERE node = $1 AND id = $2";
        self.counted(
            id,
            max,
            (record, &[&client]),
            ("s.client", &client),
            undo,
            over,
        )
        .await
    }

    /// Counts a login of `user` across the nodes (`max` > 0 only); refuses it past the
    /// limit. `Ok(true)`: the session is registered and must be ended.
    pub async fn login(
        &self,
        id: u64,
        client: IpAddr,
        user: &str,
        max: usize,
    ) -> Result<bool, Denied> {
        let record =
            "INSERT INTO wharf_sessions (node, id, client, username) VALUES ($1, $2, $3, $4)
             ON CONFLICT (node, id) DO UPDATE SET username = EXCLUDED.username";
        let over = || Denied::Limit(Refusal::per_user(max));
        let undo = "UPDATE wharf_sessions SET username = NULL WHERE node = $1 AND id = $2";
        self.counted(
            id,
            max,
            (record, &[&client, &user]),
            ("s.username", &user),
            undo,
            over,
        )
        .await
    }

    /// Records this session (`record`, with node and id as $1 and $2 before `extra`), then
    /// counts the live nodes' sessions whose `column` equals `value`; past `max`, runs
    /// `undo` (node, id) and refuses with `over`.
    async fn counted(
        &self,
        id: u64,
        max: usize,
        (record, extra): (&str, &[&(dyn tokio_postgres::types::ToSql + Sync)]),
        (column, value): (&str, &(dyn tokio_postgres::types::ToSql + Sync)),
        undo: &str,
        over: impl FnOnce() -> Denied,
    ) -> Result<bool, Denied> {
        // No limit to hold: the database is not needed, reachable or not.
        if max == 0 {
            return Ok(false);
        }
        if !self.ready.load(Ordering::Relaxed) {
            return self.unavailable().map(|_| false);
        }
        let id = id as i64;
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&self.node, &id];
        params.extend_from_slice(extra);
        if self.exec(record, &params).await.is_none() {
            return self.unavailable().map(|_| false);
        }
        let count = format!(
            "SELECT count(*) FROM wharf_sessions s JOIN wharf_nodes n ON n.name = s.node
             WHERE {column} = $1 AND n.seen > now() - make_interval(secs => $2)"
        );
        match self
            .count(&count, &[value, &self.node_timeout.as_secs_f64()])
            .await
        {
            Some(n) if n as usize > max => {
                self.exec(undo, &[&self.node, &id]).await;
                Err(over())
            }
            Some(_) => Ok(true),
            None => self.unavailable().map(|_| true),
        }
    }

    /// Forgets a session.
    pub async fn end(&self, id: u64) {
        self.exec(
            "DELETE FROM wharf_sessions WHERE node = $1 AND id = $2",
            &[&self.node, &(id as i64)],
        )
        .await;
    }
}
