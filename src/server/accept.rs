//! Accepting control connections: the PROXY header read off the accept path, bans and the
//! session limits checked, a refusal answered from its own task, the session spawned and
//! tracked. Out of descriptors, accepting backs off and logs once a second.

use super::*;

pub(super) async fn accept_loop(
    listener: TcpListener,
    policy: tokio::sync::watch::Receiver<Arc<ListenerConfig>>,
    shared: Arc<Shared>,
) {
    // Failed accepts since the last warning: logged once a second at most, so running
    // out of descriptors does not also flood the log.
    let mut failed = 0u64;
    let mut warned: Option<std::time::Instant> = None;
    loop {
        match listener.accept().await {
            Ok((mut stream, peer)) => {
                let policy = policy.borrow().clone();
                let proxy = shared.config().proxy_policy(&policy);
                if !proxy.enabled() {
                    admit(stream, peer, &shared, policy, false);
                    continue;
                }
                // The header is read in its own task: a slow balancer never stalls accepting.
                let tracker = shared.tracker.clone();
                let shared = shared.clone();
                tracker.spawn(async move {
                    match proxy.read(&mut stream, peer, crate::limits::PROXY_HEADER_WITHIN).await {
                        // A LOCAL header is the balancer's health check: never banned.
                        Ok(Some(client)) => admit(stream, client, &shared, policy, false),
                        Ok(None) => admit(stream, peer, &shared, policy, true),
                        Err(e) => {
                            shared.metrics.proxy_refused.inc();
                            tracing::warn!(from = %peer, error = %e, "connection closed: PROXY protocol");
                        }
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning; the
                // connection waits in the backlog until sessions end and free some.
                failed += 1;
                if warned.is_none_or(|t| t.elapsed() >= crate::limits::ACCEPT_WARN_EVERY) {
                    tracing::warn!(error = %e, failed, "accept failed; backing off");
                    warned = Some(std::time::Instant::now());
                    failed = 0;
                }
                tokio::time::sleep(crate::limits::ACCEPT_RETRY_AFTER).await;
            }
        }
    }
}

/// Lets a connection from `peer` (the client, after any PROXY header) in, or refuses it
/// (banned, too many sessions), and starts its session. A balancer's health check is
/// `exempt` from bans.
fn admit(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    policy: Arc<ListenerConfig>,
    exempt: bool,
) {
    let ip = crate::datachan::canonical(peer.ip());
    let cfg = shared.config();
    let ban = (!exempt)
        .then(|| shared.guard.banned(ip, std::time::Instant::now()))
        .flatten();
    let admitted = match ban {
        Some(left) => Err(crate::limits::Refusal(format!(
            "Too many failed logins from your address; banned for {} more seconds.",
            left.as_secs().max(1)
        ))),
        None => shared.sessions.admit(
            ip,
            cfg.max_sessions.unwrap_or(shared.auto_max_sessions),
            cfg.max_sessions_per_ip,
        ),
    };
    let slot = match admitted {
        Ok(slot) => slot,
        Err(refusal) => {
            tracing::info!(client = %ip, reason = %refusal.0, "connection refused");
            // Answer from a task so a slow client never stalls accepting.
            shared
                .tracker
                .spawn(session::refuse(stream, refusal, policy.implicit));
            return;
        }
    };
    shared
        .metrics
        .sessions_total
        .get_or_create(&vec![(
            "listener".to_string(),
            if policy.implicit {
                "implicit"
            } else {
                "explicit"
            }
            .to_string(),
        )])
        .inc();
    let _ = stream.set_nodelay(true);
    // ABOR arrives as TCP urgent data (ftplib, BSD ftp); keep that byte in the stream so
    // the line framer sees the whole command.
    let _ = socket2::SockRef::from(&stream).set_out_of_band_inline(true);
    shared
        .tracker
        .spawn(session::run(stream, peer, shared.clone(), policy, slot));
}
