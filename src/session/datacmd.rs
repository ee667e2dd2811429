//! PASV, EPSV and PORT/EPRT (RFC 959, 2428): how the next data connection is made.

use super::*;

impl Session {
    /// PASV/EPSV: leases a passive port and starts accepting on it; returns the port.
    pub(super) fn open_passive(&mut self) -> Result<u16, Reply> {
        // The port this session held before is given back first: one at a time.
        self.data = None;
        let cap = datachan::per_address_cap(self.cfg.passive_ports);
        let Some(lease) = self.shared.leases.take(self.peer, cap) else {
            warn!(
                held = cap,
                "passive ports refused: this address holds its share"
            );
            return Err(replies::TOO_MANY_PASSIVE_PORTS.reply());
        };
        let listener =
            datachan::listen_passive(self.local, self.cfg.passive_ports).map_err(|e| {
                warn!(error = %e, "cannot open a passive port");
                replies::NO_PASSIVE_PORT.reply()
            })?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        self.data = Some(datachan::accept_passive(
            listener,
            datachan::PassiveOptions {
                peer: self.peer,
                check: self.cfg.passive_peer_check,
                tls: self.data_tls(),
                lease: Some(lease),
                proxy: Some(self.cfg.proxy_policy(&self.listener)).filter(|p| p.enabled()),
                expires: Duration::from_secs(self.cfg.data_connect_timeout),
            },
        ));
        Ok(port)
    }

    pub(super) fn pasv(&mut self) -> Reply {
        if self.epsv_all {
            return replies::EPSV_ALL_IN_EFFECT.reply();
        }
        let IpAddr::V4(local) = self.local.to_canonical() else {
            return replies::PASV_NEEDS_IPV4.reply();
        };
        let proxied = self.cfg.proxy_policy(&self.listener).enabled();
        let announce = self.shared.announce().for_client(self.peer, local, proxied);
        let port = match self.open_passive() {
            Ok(p) => p,
            Err(r) => return r,
        };
        let o = announce.octets();
        Reply::new(
            Code::PassiveMode,
            format!(
                "Entering Passive Mode ({},{},{},{},{},{}).",
                o[0],
                o[1],
                o[2],
                o[3],
                port >> 8,
                port & 0xff
            ),
        )
    }

    pub(super) fn epsv(&mut self, arg: EpsvArg) -> Reply {
        let family = if self.local.is_ipv4() { 1 } else { 2 };
        match arg {
            EpsvArg::All => {
                self.epsv_all = true;
                return replies::EPSV_ALL_OK.reply();
            }
            EpsvArg::Family(f) if f != family => {
                return Reply::new(
                    Code::NetworkProtocolNotSupported,
                    format!("Network protocol not supported, use ({family})"),
                );
            }
            _ => {}
        }
        let port = match self.open_passive() {
            Ok(p) => p,
            Err(r) => return r,
        };
        Reply::new(
            Code::ExtendedPassiveMode,
            format!("Entering Extended Passive Mode (|||{port}|)"),
        )
    }

    pub(super) fn port(&mut self, target: SocketAddr) -> Reply {
        if self.epsv_all {
            return replies::EPSV_ALL_IN_EFFECT.reply();
        }
        if !datachan::active_target_allowed(target, self.peer, self.cfg.active_peer_check) {
            return replies::PORT_REFUSED.reply();
        }
        self.data = Some(DataSetup::Active(target));
        replies::PORT_OK.reply()
    }
}
