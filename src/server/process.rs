//! The process around the server: sockets inherited from systemd, readiness notices, the
//! umask and dropping root after binding.

use super::*;

/// Listeners passed by systemd socket activation (`LISTEN_FDS`); a socket named
/// `implicit` (`FileDescriptorName=implicit`) speaks implicit TLS.
pub(super) fn inherited_listeners() -> io::Result<Vec<(TcpListener, bool)>> {
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|n| n.split(':').map(str::to_string).collect())
        .unwrap_or_default();
    let mut fds = listenfd::ListenFd::from_env();
    let mut out = Vec::new();
    for i in 0..fds.len() {
        if let Some(std_listener) = fds.take_tcp_listener(i)? {
            std_listener.set_nonblocking(true)?;
            let implicit = names.get(i).is_some_and(|n| n == "implicit");
            out.push((TcpListener::from_std(std_listener)?, implicit));
        }
    }
    Ok(out)
}

/// Tells systemd (`Type=notify`) how the service is doing; a no-op outside systemd.
pub fn notify(state: &[sd_notify::NotifyState]) {
    let _ = sd_notify::notify(state);
}

/// Sets the umask and, when `run_as` is configured, drops root for that user (after the
/// listeners are bound: port 21 stays open, sessions run unprivileged).
pub fn apply_process_settings(config: &Config) -> io::Result<()> {
    use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};
    if let Some(mask) = config.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    let Some(user) = &config.run_as else {
        return Ok(());
    };
    let entry = nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .ok_or_else(|| io::Error::other(format!("run_as: no such user `{user}`")))?;
    let gid = match &config.run_as_group {
        Some(g) => Gid::from_raw(
            crate::vfs::Ownership::gid_of(g)
                .ok_or_else(|| io::Error::other(format!("run_as_group: no such group `{g}`")))?,
        ),
        None => entry.gid,
    };
    let uid: Uid = entry.uid;
    let state = crate::secrets::state_dir(config);
    crate::tls::hand_generated_to(&state, uid.as_raw(), gid.as_raw())
        .map_err(|e| io::Error::other(format!("run_as: {}: {e}", state.display())))?;
    setgroups(&[gid]).map_err(io::Error::from)?;
    setgid(gid).map_err(io::Error::from)?;
    setuid(uid).map_err(io::Error::from)?;
    tracing::info!(user = %user, uid = uid.as_raw(), gid = gid.as_raw(), "dropped privileges");
    Ok(())
}
