//! What address a PASV reply announces, by client: the NAT rules.
//!
//! `[[passive_address]]` entries first (the first network holding the client wins); then
//! clients on loopback, private (RFC 1918, RFC 4193) and link-local networks get the
//! address they connected to, so a server behind NAT still serves its own LAN; everyone
//! else gets `public_address` when set. Behind a load balancer (PROXY protocol) the
//! address the client connected to is the balancer's, which wharf does not see: there
//! `public_address` (the balancer's) goes to every client no override names.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use crate::config::Config;

/// The resolved NAT rules of one configuration (host names looked up once, at load and
/// reload).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announce {
    public: Option<Ipv4Addr>,
    by_network: Vec<(IpNet, Ipv4Addr)>,
}

impl Announce {
    /// Resolves `public_address` and every `[[passive_address]]`; says which fails.
    pub fn resolve(config: &Config) -> Result<Announce, String> {
        let public = match &config.public_address {
            Some(h) => Some(h.resolve_v4().map_err(|e| format!("public_address: {e}"))?),
            None => None,
        };
        let by_network = config
            .passive_addresses
            .iter()
            .map(|p| {
                let a = p
                    .address
                    .resolve_v4()
                    .map_err(|e| format!("passive_address for {}: {e}", p.network))?;
                Ok((p.network, a))
            })
            .collect::<Result<_, String>>()?;
        Ok(Announce { public, by_network })
    }

    /// The IPv4 address to announce to `client`, which reached us at `local`;
    /// `proxied` when a balancer stands between (its address is the one to give).
    pub fn for_client(&self, client: IpAddr, local: Ipv4Addr, proxied: bool) -> Ipv4Addr {
        let client = client.to_canonical();
        if let Some((_, a)) = self.by_network.iter().find(|(n, _)| n.contains(&client)) {
            return *a;
        }
        match self.public {
            Some(public) if proxied || !on_local_network(client) => public,
            _ => local,
        }
    }
}

/// Loopback, private and link-local addresses: clients that reach the server without NAT.
fn on_local_network(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PassiveAddress;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn local_clients_get_the_local_address_others_the_public_one() {
        let c = Config {
            public_address: Some("203.0.113.7".parse().unwrap()),
            passive_addresses: vec![PassiveAddress {
                network: "10.8.0.0/16".parse().unwrap(),
                address: "10.8.0.1".parse().unwrap(),
            }],
            ..Config::default()
        };
        let a = Announce::resolve(&c).unwrap();
        let local = Ipv4Addr::new(192, 168, 1, 10);
        let public = Ipv4Addr::new(203, 0, 113, 7);
        for lan in [
            "127.0.0.1",
            "192.168.1.50",
            "10.1.2.3",
            "172.16.0.9",
            "169.254.1.1",
            "::1",
            "::ffff:192.168.1.50",
            "fd00::1",
        ] {
            assert_eq!(a.for_client(ip(lan), local, false), local, "{lan}");
        }
        for far in ["198.51.100.4", "8.8.8.8", "2001:db8::1", "100.64.0.1"] {
            assert_eq!(a.for_client(ip(far), local, false), public, "{far}");
        }
        // An override wins over both rules, and behind a balancer the public one is given.
        assert_eq!(
            a.for_client(ip("10.8.3.4"), local, false),
            Ipv4Addr::new(10, 8, 0, 1)
        );
        assert_eq!(a.for_client(ip("192.168.1.50"), local, true), public);
        // Without a public address everyone gets the local one.
        let none = Announce::resolve(&Config::default()).unwrap();
        assert_eq!(none.for_client(ip("8.8.8.8"), local, false), local);
    }

    #[test]
    fn names_resolve_and_ipv6_is_refused() {
        let mut c = Config {
            public_address: Some("localhost".parse().unwrap()),
            ..Config::default()
        };
        let a = Announce::resolve(&c).unwrap();
        assert_eq!(
            a.for_client(ip("8.8.8.8"), Ipv4Addr::new(10, 0, 0, 1), false),
            Ipv4Addr::LOCALHOST
        );
        c.public_address = Some("2001:db8::1".parse().unwrap());
        assert!(Announce::resolve(&c).unwrap_err().contains("IPv6"));
        assert!(
            "ftp.example.com:21"
                .parse::<crate::config::HostAddr>()
                .is_err()
        );
        assert!("[::1]".parse::<crate::config::HostAddr>().is_err());
    }
}
