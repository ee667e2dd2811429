//! The Prometheus metrics wharf exports; the admin endpoint encodes them at each scrape.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every metric wharf exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub sessions_total: Family<Labels, Counter>,
    pub sessions_current: Gauge,
    /// Filled from the session registry at each scrape.
    pub sessions_by_tls: Family<Labels, Gauge>,
    pub logins: Family<Labels, Counter>,
    pub transfers: Family<Labels, Counter>,
    pub bytes: Family<Labels, Counter>,
    pub duration: Family<Labels, Histogram>,
    pub bans: Counter,
    pub passive_ports: Gauge,
    pub reloads: Family<Labels, Counter>,
    /// Connections closed for a missing, malformed or untrusted PROXY header.
    pub proxy_refused: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wharf");
        let m = Metrics {
            registry: Registry::default(),
            sessions_total: Family::default(),
            sessions_current: Gauge::default(),
            sessions_by_tls: Family::default(),
            logins: Family::default(),
            transfers: Family::default(),
            bytes: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new([0.01, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0])
            }),
            bans: Counter::default(),
            passive_ports: Gauge::default(),
            reloads: Family::default(),
            proxy_refused: Counter::default(),
        };
        registry.register(
            "sessions",
            "Sessions accepted, by listener kind",
            m.sessions_total.clone(),
        );
        registry.register(
            "sessions_current",
            "Sessions connected now",
            m.sessions_current.clone(),
        );
        registry.register(
            "sessions_by_tls",
            "Sessions connected now, by whether the control connection is encrypted",
            m.sessions_by_tls.clone(),
        );
        registry.register("logins", "Logins, by result", m.logins.clone());
        registry.register(
            "transfers",
            "File transfers, by direction and result",
            m.transfers.clone(),
        );
        registry.register("bytes", "Bytes moved, by direction", m.bytes.clone());
        registry.register(
            "transfer_duration_seconds",
            "Transfer durations, by direction",
            m.duration.clone(),
        );
        registry.register("bans", "Addresses banned", m.bans.clone());
        registry.register(
            "passive_ports_in_use",
            "Passive ports open now",
            m.passive_ports.clone(),
        );
        registry.register("reloads", "Reloads, by result", m.reloads.clone());
        registry.register(
            "proxy_refused",
            "Connections closed for a missing, malformed or untrusted PROXY header",
            m.proxy_refused.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Bytes moved by finished transfers (up, down) and logins (ok, failed) so far.
    pub fn totals(&self) -> (u64, u64, u64, u64) {
        let get = |f: &Family<Labels, Counter>, k: &str, v: &str| {
            f.get_or_create(&labels(&[(k, v)])).get()
        };
        (
            get(&self.bytes, "direction", "upload"),
            get(&self.bytes, "direction", "download"),
            get(&self.logins, "result", "ok"),
            get(&self.logins, "result", "failed"),
        )
    }

    pub fn login(&self, ok: bool) {
        self.logins
            .get_or_create(&labels(&[("result", if ok { "ok" } else { "failed" })]))
            .inc();
    }

    pub fn transfer(&self, direction: &str, ok: bool, bytes: u64, seconds: f64) {
        let result = if ok { "ok" } else { "failed" };
        self.transfers
            .get_or_create(&labels(&[("direction", direction), ("result", result)]))
            .inc();
        self.bytes
            .get_or_create(&labels(&[("direction", direction)]))
            .inc_by(bytes);
        self.duration
            .get_or_create(&labels(&[("direction", direction)]))
            .observe(seconds);
    }

    pub fn reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&labels(&[("result", if ok { "ok" } else { "failed" })]))
            .inc();
    }

    /// Sets the sessions-by-encryption gauge (counted from the registry at each scrape).
    pub fn sessions_by_tls(&self, encrypted: i64, plain: i64) {
        for (tls, n) in [("true", encrypted), ("false", plain)] {
            self.sessions_by_tls
                .get_or_create(&labels(&[("tls", tls)]))
                .set(n);
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}
