//! What a configuration says, for people: the summary `check-config` and the start-up
//! line print, and warnings for what is allowed but likely a mistake.

use super::*;

impl Config {
    /// What is allowed but likely a mistake, for warnings at start-up: an `admin_token`
    /// short enough to guess, and a `proxy_trusted` (global or a listener's) that trusts
    /// every address, so that any client may claim any source address in a PROXY header.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(token) = &self.admin_token {
            let n = token.chars().count();
            if n < ADMIN_TOKEN_MIN {
                out.push(format!(
                    "admin_token has {n} characters: one of {ADMIN_TOKEN_MIN} or more is much harder to guess"
                ));
            }
        }
        let everything = |nets: &[ipnet::IpNet]| nets.iter().find(|n| n.prefix_len() == 0).copied();
        if let Some(net) = everything(&self.proxy_trusted) {
            out.push(format!(
                "proxy_trusted {net} trusts every address: any client may claim any source address in a PROXY header"
            ));
        }
        for l in &self.listeners {
            if let Some(net) = l.proxy_trusted.as_deref().and_then(everything) {
                out.push(format!(
                    "listener {}: proxy_trusted {net} trusts every address: any client may claim any source address in a PROXY header",
                    l.address
                ));
            }
        }
        if self.passive_ports.is_none()
            && (self.public_address.is_some() || !self.passive_addresses.is_empty())
        {
            out.push(
                "public_address is set but passive_ports is not: a NAT router must forward the passive ports, so give it a range (e.g. passive_ports = \"50000-50100\")"
                    .into(),
            );
        }
        out
    }

    /// A short human summary, for `check-config` and the start-up line.
    pub fn explain(&self) -> String {
        let mut s = String::new();
        use std::fmt::Write;
        let listen: Vec<String> = self
            .all_listeners()
            .iter()
            .map(|l| {
                let mut t = l.address.to_string();
                if l.implicit {
                    t.push_str(" (implicit TLS)");
                }
                if let Some(m) = l.tls {
                    t.push_str(&format!(" tls={}", format!("{m:?}").to_lowercase()));
                }
                if let Some(d) = l.tls_data {
                    t.push_str(&format!(" tls_data={}", format!("{d:?}").to_lowercase()));
                }
                t
            })
            .collect();
        let _ = writeln!(s, "listen: {}", listen.join(", "));
        let _ = writeln!(s, "root: {}", self.root.display());
        let _ = writeln!(
            s,
            "anonymous: {} (root {})",
            self.anonymous_mode(),
            self.anonymous_root().display()
        );
        let _ = writeln!(
            s,
            "passive ports: {}",
            self.passive_ports
                .map(|r| r.to_string())
                .unwrap_or_else(|| "any free port".into())
        );
        if let Some(a) = &self.public_address {
            let _ = writeln!(
                s,
                "public address: {a} (to clients outside loopback, private and link-local networks)"
            );
        }
        for p in &self.passive_addresses {
            let _ = writeln!(
                s,
                "passive address: {} to clients in {}",
                p.address, p.network
            );
        }
        self.explain_storages(&mut s);
        if self.tls_enabled() {
            let implicit: Vec<String> =
                self.implicit_listen.iter().map(|a| a.to_string()).collect();
            let _ = writeln!(
                s,
                "tls: {}, data {}, session reuse {}{}; certificate {}",
                format!("{:?}", self.tls).to_lowercase(),
                format!("{:?}", self.tls_data).to_lowercase(),
                format!("{:?}", self.tls_data_reuse).to_lowercase(),
                if implicit.is_empty() {
                    String::new()
                } else {
                    format!("; implicit on {}", implicit.join(", "))
                },
                match &self.tls_cert {
                    Some(c) => c.display().to_string(),
                    None => "generated (self-signed)".into(),
                }
            );
        }
        self.explain_users(&mut s);
        s
    }

    /// One line per storage: endpoint, bucket and prefix only, never credentials.
    fn explain_storages(&self, s: &mut String) {
        use std::fmt::Write;
        for st in &self.storages {
            // Endpoint, bucket and prefix only: credentials never appear here.
            let _ = match st.kind {
                StorageKind::Local => writeln!(
                    s,
                    "storage {}: local {}",
                    st.name,
                    st.path.as_deref().unwrap_or(Path::new("")).display()
                ),
                StorageKind::S3 => writeln!(
                    s,
                    "storage {}: s3://{}/{} at {}, part size {} MiB",
                    st.name,
                    st.bucket.as_deref().unwrap_or(""),
                    st.prefix.as_deref().unwrap_or(""),
                    st.endpoint.as_deref().unwrap_or("AWS"),
                    st.part_size >> 20
                ),
            };
        }
    }

    /// One line per user, and one per directory rule below it.
    fn explain_users(&self, s: &mut String) {
        use std::fmt::Write;
        for u in &self.users {
            let perms: Vec<String> = u
                .permissions
                .iter()
                .map(|p| format!("{p:?}").to_lowercase())
                .collect();
            let _ = writeln!(
                s,
                "user {}{}: root {}, home {}, permissions {}",
                u.name,
                if u.enabled { "" } else { " (disabled)" },
                u.root.as_deref().unwrap_or(&self.root).display(),
                u.home.as_deref().unwrap_or("/"),
                perms.join("+")
            );
            for d in &u.dirs {
                let p: Vec<String> = d
                    .permissions
                    .iter()
                    .map(|p| format!("{p:?}").to_lowercase())
                    .collect();
                let _ = writeln!(s, "  below {}: {}", d.path, p.join("+"));
            }
        }
    }
}
