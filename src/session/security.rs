//! AUTH TLS (RFC 4217) and the TLS policies a session runs under: per user, then per
//! listener, then global.

use super::*;

impl Session {
    /// AUTH TLS (RFC 4217): 234, then the handshake on the same socket.
    pub(super) async fn auth(&mut self, mech: &[u8]) -> Result<Option<Reply>, Stop> {
        let Some(tls) = self.shared.tls() else {
            return Ok(Some(replies::TLS_OFF.reply()));
        };
        if self.listener_tls() == TlsMode::Off {
            return Ok(Some(replies::TLS_OFF_HERE.reply()));
        }
        if self.ctrl.stream.is_tls() {
            return Ok(Some(replies::TLS_ALREADY_ACTIVE.reply()));
        }
        let mech = mech.trim_ascii().to_ascii_uppercase();
        // curl sends AUTH SSL first; TLS-C and TLS-P are old spellings of the same.
        if !matches!(mech.as_slice(), b"TLS" | b"SSL" | b"TLS-C" | b"TLS-P") {
            return Ok(Some(replies::UNKNOWN_MECHANISM.reply()));
        }
        let r = replies::AUTH_TLS_OK.reply();
        if self.send(r).await.is_err() {
            return Err(Stop::Drop);
        }
        if self.ctrl.has_pending() {
            // Bytes pipelined after AUTH would be read as a ClientHello; refuse the mess.
            info!("data sent after AUTH before the handshake; closing");
            return Err(Stop::Drop);
        }
        let plain = std::mem::replace(&mut self.ctrl.stream, Stream::Closed);
        let limit = Duration::from_secs(self.cfg.tls_handshake_timeout);
        // A host chosen by HOST before AUTH presents its own certificate to a client that
        // names no host by SNI (RFC 7151 asks for HOST first for this reason).
        let (acceptor, _) = tls.for_host(self.host.as_ref().map(|h| h.name.as_str()));
        match tokio::time::timeout(limit, plain.upgrade(acceptor, Some(&self.token))).await {
            Ok(Ok(stream)) => {
                self.ctrl.stream = stream;
                self.shared.tls_owners.handshake(self.token, self.peer);
                self.listed.view.tls.store(true, Ordering::Relaxed);
                // RFC 4217 section 4: a new security context starts a new login.
                if self.phase == Phase::LoggedIn {
                    self.logout();
                }
                self.host_from_sni();
                Ok(None)
            }
            Ok(Err(e)) => {
                info!(error = %e, "TLS handshake after AUTH failed");
                Err(Stop::Drop)
            }
            Err(_) => {
                info!("TLS handshake after AUTH timed out");
                Err(Stop::Drop)
            }
        }
    }

    /// The TLS acceptor for data connections, when PROT P is in force.
    pub(super) fn data_tls(&self) -> Option<tokio_rustls::TlsAcceptor> {
        if !self.prot_private {
            return None;
        }
        let host = self.host.as_ref().map(|h| h.name.as_str());
        self.shared.tls().map(|t| t.for_host(host).1.clone())
    }

    pub(super) fn exempt(&self, anonymous: bool) -> bool {
        anonymous && self.cfg.tls_exempt_anonymous
    }

    /// The control-connection TLS policy for a login name.
    pub(super) fn control_policy(&self, name: &[u8]) -> TlsMode {
        let user = self.authenticator().user(name);
        if user.is_none() && self.exempt(crate::auth::is_anonymous_name(name)) {
            return TlsMode::Optional;
        }
        user.and_then(|u| u.tls).unwrap_or(self.listener_tls())
    }

    /// The listener's control-connection policy (its own, else the global one).
    pub(super) fn listener_tls(&self) -> TlsMode {
        self.listener.tls.unwrap_or(self.cfg.tls)
    }

    pub(super) fn user_config(&self) -> Option<&crate::config::UserConfig> {
        self.login.as_ref()?.grant.config.as_deref()
    }

    /// The data-connection TLS policy for this login.
    pub(super) fn data_policy(&self) -> TlsData {
        let cfg = &self.cfg;
        if self.exempt(self.login.as_ref().is_some_and(|l| l.grant.anonymous)) {
            return TlsData::Optional;
        }
        self.user_config()
            .and_then(|u| u.tls_data)
            .or(self.listener.tls_data)
            .unwrap_or(cfg.tls_data)
    }

    /// The data-connection session-reuse policy for this login.
    pub(super) fn reuse_policy(&self) -> TlsReuse {
        self.user_config()
            .and_then(|u| u.tls_data_reuse)
            .or(self.listener.tls_data_reuse)
            .unwrap_or(self.cfg.tls_data_reuse)
    }

    /// PBSZ (RFC 4217 section 9): only 0 is meaningful over TLS.
    pub(super) fn pbsz(&mut self) -> Reply {
        if !self.ctrl.stream.is_tls() {
            return replies::AUTH_TLS_FIRST.reply();
        }
        self.pbsz = true;
        replies::PBSZ_ZERO.reply()
    }

    /// PROT (RFC 4217 section 9): C or P, after PBSZ.
    pub(super) fn prot(&mut self, level: &[u8]) -> Reply {
        if !self.ctrl.stream.is_tls() {
            return replies::AUTH_TLS_FIRST.reply();
        }
        if !self.pbsz {
            return replies::PBSZ_FIRST.reply();
        }
        match level.trim_ascii().to_ascii_uppercase().as_slice() {
            b"C" => {
                self.prot_private = false;
                replies::PROT_CLEAR.reply()
            }
            b"P" => {
                self.prot_private = true;
                replies::PROT_PRIVATE.reply()
            }
            b"S" | b"E" => replies::PROT_UNSUPPORTED.reply(),
            _ => replies::PROT_LEVELS.reply(),
        }
    }

    /// CCC (RFC 4217 section 6): refused; the control connection stays encrypted.
    pub(super) fn ccc(&self) -> Reply {
        if !self.ctrl.stream.is_tls() {
            return replies::NOT_ENCRYPTED.reply();
        }
        replies::CCC_REFUSED.reply()
    }
}
