//! AUTH TLS (RFC 4217) and the TLS policies a session runs under: per user, then per
//! listener, then global.

use super::*;

impl Session {
    /// AUTH TLS (RFC 4217): 234, then the handshake on the same socket.
    pub(super) async fn auth(&mut self, mech: &[u8]) -> Result<Option<Reply>, Stop> {
        let Some(tls) = self.shared.tls() else {
            return Ok(Some(reply(
                Code::NotImplemented,
                "TLS is not enabled on this server.",
            )));
        };
        if self.listener_tls() == TlsMode::Off {
            return Ok(Some(reply(
                Code::NotImplemented,
                "AUTH TLS is not enabled on this listener.",
            )));
        }
        if self.ctrl.stream.is_tls() {
            return Ok(Some(reply(Code::BadSequence, "TLS is already active.")));
        }
        let mech = mech.trim_ascii().to_ascii_uppercase();
        // curl sends AUTH SSL first; TLS-C and TLS-P are old spellings of the same.
        if !matches!(mech.as_slice(), b"TLS" | b"SSL" | b"TLS-C" | b"TLS-P") {
            return Ok(Some(reply(
                Code::ParameterNotImplemented,
                "Unknown security mechanism; use AUTH TLS.",
            )));
        }
        let r = reply(
            Code::AuthOk,
            "AUTH TLS successful; start the TLS handshake.",
        );
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
        match tokio::time::timeout(limit, plain.upgrade(&tls.acceptor, Some(&self.token))).await {
            Ok(Ok(stream)) => {
                self.ctrl.stream = stream;
                self.shared.tls_owners.handshake(self.token, self.peer);
                self.listed.view.tls.store(true, Ordering::Relaxed);
                // RFC 4217 section 4: a new security context starts a new login.
                if self.phase == Phase::LoggedIn {
                    self.logout();
                }
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
        self.shared.tls().map(|t| t.data_acceptor.clone())
    }

    pub(super) fn exempt(&self, anonymous: bool) -> bool {
        anonymous && self.cfg.tls_exempt_anonymous
    }

    /// The control-connection TLS policy for a login name.
    pub(super) fn control_policy(&self, name: &[u8]) -> TlsMode {
        let user = self.shared.auth().user(name);
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
            return reply(Code::BadSequence, "Use AUTH TLS first.");
        }
        self.pbsz = true;
        reply(Code::Ok, "PBSZ=0")
    }

    /// PROT (RFC 4217 section 9): C or P, after PBSZ.
    pub(super) fn prot(&mut self, level: &[u8]) -> Reply {
        if !self.ctrl.stream.is_tls() {
            return reply(Code::BadSequence, "Use AUTH TLS first.");
        }
        if !self.pbsz {
            return reply(Code::BadSequence, "Send PBSZ 0 before PROT.");
        }
        match level.trim_ascii().to_ascii_uppercase().as_slice() {
            b"C" => {
                self.prot_private = false;
                reply(Code::Ok, "Protection level set to Clear.")
            }
            b"P" => {
                self.prot_private = true;
                reply(Code::Ok, "Protection level set to Private.")
            }
            b"S" | b"E" => reply(
                Code::ProtNotSupported,
                "Only PROT C and PROT P are supported.",
            ),
            _ => reply(Code::ParameterNotImplemented, "PROT takes C or P."),
        }
    }

    /// CCC (RFC 4217 section 6): refused; the control connection stays encrypted.
    pub(super) fn ccc(&self) -> Reply {
        if !self.ctrl.stream.is_tls() {
            return reply(
                Code::BadSequence,
                "The control connection is not encrypted.",
            );
        }
        reply(
            Code::PolicyDenied,
            "CCC refused: the control connection stays encrypted.",
        )
    }
}
