//! Reloading while running (SIGHUP, `wharf reload`): the new configuration, users file,
//! certificate and storages are built and checked first, and new listeners bound, before
//! anything is committed; then the accept loop is told which listeners to open and close.

use super::*;

impl Shared {
    /// Re-reads everything that can change while running: the configuration (limits,
    /// policies, permissions, banner, hooks, …), the users file and the certificate. All
    /// or nothing: on any error the old settings stay and the error says why. Sessions
    /// already logged in keep what they had until their next login. Listeners are opened
    /// and closed as the new configuration says (sessions on a closed one carry on); log
    /// files, the admin endpoint and `run_as` need a restart.
    pub fn reload(&self) -> Result<(), String> {
        let result = self.reload_inner().map(|_| ());
        self.metrics.reload(result.is_ok());
        match &result {
            Ok(()) => tracing::info!("configuration reloaded"),
            Err(e) => tracing::error!(error = %e, "reload failed; the old settings stay"),
        }
        result
    }

    pub(super) fn reload_inner(&self) -> Result<usize, String> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.config();
        let fresh = match self
            .reloader
            .lock()
            .ok()
            .and_then(|r| r.as_ref().map(|f| f()))
        {
            Some(result) => result?,
            None => (*old).clone(),
        };
        let users = preflight(&fresh)?;
        let source = cert_source(&fresh);
        let tls = match &source {
            Some(s) => Some(Arc::new(
                tls::load(s, &super::host_certs(&fresh)).map_err(|e| format!("TLS: {e}"))?,
            )),
            None => None,
        };
        let stores = build_stores(&fresh)?;
        let announce = Arc::new(crate::datachan::Announce::resolve(&fresh)?);
        // Bound before anything is committed, so a port in use rejects the whole reload.
        let listeners = self.plan_listeners(&old, &fresh)?;
        for (what, same) in [
            ("log_file", fresh.log_file == old.log_file),
            ("xferlog", fresh.xferlog == old.xferlog),
            ("admin_listen", fresh.admin_listen == old.admin_listen),
            ("admin_socket", fresh.admin_socket == old.admin_socket),
            ("run_as", fresh.run_as == old.run_as),
            ("cluster", fresh.cluster == old.cluster),
        ] {
            if !same {
                tracing::warn!(setting = what, "changed; takes effect at the next restart");
            }
        }
        let auth = Arc::new(Authenticator::new(&fresh, &users).sharing_cache_of(&self.auth()));
        let n = auth.user_count();
        let hosts = super::build_hosts(&fresh, &auth)?;
        self.quotas
            .set_active(auth.has_quota() || hosts.iter().any(|h| h.auth.has_quota()));
        // Files may have been changed behind wharf's back: counted again at next need.
        self.quotas.forget_local();
        if let Some(t) = &tls {
            tracing::info!(source = %t.source, sha256 = %t.fingerprint, "TLS certificate loaded");
        }
        write(&self.auth, auth);
        write(&self.hosts, Arc::new(hosts));
        write(&self.tls, tls);
        write(&self.tls_source, source);
        write(
            &self.hooks,
            Arc::new(crate::hooks::Hooks::new(&fresh, self.tasks.clone())),
        );
        write(&self.ownership, crate::vfs::Ownership::from_config(&fresh));
        write(&self.announce, announce);
        write(&self.stores, Arc::new(stores));
        write(&self.config, Arc::new(fresh));
        if let Some(change) = listeners
            && let Some(tx) = &*self
                .listener_changes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
        {
            let _ = tx.send(change);
        }
        Ok(n)
    }

    /// Binds the listeners `fresh` adds and lists those it drops or changes. `None` when
    /// nothing changes or the server does not own its sockets.
    fn plan_listeners(
        &self,
        old: &Config,
        fresh: &Config,
    ) -> Result<Option<ListenerChange>, String> {
        let (before, after) = (old.all_listeners(), fresh.all_listeners());
        if before == after {
            return Ok(None);
        }
        if self
            .listener_changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
        {
            tracing::warn!(
                setting = "listeners",
                "changed; the sockets are not wharf's to change (socket activation): restart to apply"
            );
            return Ok(None);
        }
        let mut change = ListenerChange::default();
        for l in &after {
            match before.iter().find(|b| b.address == l.address) {
                None => change.add.push((bind_listener(l.address)?, l.clone())),
                Some(b) if b != l => change.update.push(l.clone()),
                Some(_) => {}
            }
        }
        change.remove = before
            .iter()
            .map(|b| b.address)
            .filter(|a| !after.iter().any(|l| l.address == *a))
            .collect();
        Ok((!change.is_empty()).then_some(change))
    }
}
