//! A transfer's life around its task: started after 150, finished with its reply and log
//! lines, cancelled by ABOR, a kick or shutdown.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    Download,
    Upload,
    Listing,
}

impl Direction {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Direction::Download => "download",
            Direction::Upload => "upload",
            Direction::Listing => "listing",
        }
    }
}

/// A transfer in flight.
pub(super) struct Running {
    pub(super) handle: JoinHandle<Result<Outcome, TransferError>>,
    pub(super) cancel: tokio_util::sync::CancellationToken,
    pub(super) progress: Arc<AtomicU64>,
    pub(super) direction: Direction,
    pub(super) path: VPath,
    pub(super) started: Instant,
    pub(super) done: Reply,
    pub(super) ascii: bool,
    /// An atomic upload still to be moved under its name.
    pub(super) commit: Option<Commit>,
    /// An S3 upload, to complete, keep for a resume, or abort when the transfer ends.
    pub(super) upload: Option<Arc<tokio::sync::Mutex<crate::vfs::s3::Upload>>>,
    /// An upload counted in quotas: what to count when it ends.
    pub(super) quota: Option<Box<UploadQuota>>,
}

/// An upload under a quota, or one that changes a root whose quota is counted.
pub(super) struct UploadQuota {
    /// Its charge against the login's quota (none without one).
    pub(super) charge: Option<Arc<crate::quota::Charge>>,
    /// The name asked for, and what it took before the upload.
    pub(super) target: Authorized,
    pub(super) before: Footprint,
    /// Bytes of an interrupted upload it continues (counted, now in its temporary name).
    pub(super) resumed: u64,
    /// A write in place stopped by the quota is cut back to this length (`None`: the file
    /// was new, and is removed); `None` when not written in place.
    pub(super) rollback: Option<Option<u64>>,
}

/// Where an atomic upload goes when it completes.
#[derive(Debug, Clone)]
pub(super) struct Commit {
    pub(super) temp: Authorized,
    pub(super) target: Authorized,
    /// Replace an existing file (the login may overwrite), else never overwrite.
    pub(super) replace: bool,
    /// On a name collision, take the next free `name.N` instead of refusing.
    pub(super) unique: bool,
    /// A binary upload of a name the client chose: kept hidden for a resume when the
    /// client goes away.
    pub(super) resumable: bool,
}

impl Session {
    /// Sends the opening reply and spawns the transfer task.
    pub(super) async fn start(
        &mut self,
        job: Job,
        opening: Reply,
        direction: Direction,
        path: VPath,
        done: Reply,
        commit: Option<Commit>,
    ) -> Result<Option<Reply>, Reply> {
        if !self.prot_private && self.data_policy() == TlsData::Required {
            return Err(replies::DATA_TLS_REQUIRED.reply());
        }
        let Some(setup) = self.data.take() else {
            return Err(replies::NO_DATA_CONNECTION.reply());
        };
        // A failed write means the control connection is gone; the loop notices on read.
        let _ = self.send(opening).await;
        let cfg = &self.cfg;
        let progress = Arc::new(AtomicU64::new(0));
        let cancel = tokio_util::sync::CancellationToken::new();
        let mut params = Params {
            charge: None,
            cancel: cancel.clone(),
            setup,
            local: self.local,
            connect_timeout: Duration::from_secs(cfg.data_connect_timeout),
            stall: Duration::from_secs(cfg.data_stall_timeout),
            progress: progress.clone(),
            tls: self.data_tls(),
            reuse: self.reuse_policy(),
            token: self.token,
            user: self
                .login
                .as_ref()
                .map(|l| l.grant.user.clone())
                .unwrap_or_default(),
            peer: self.peer,
            owners: self.shared.tls_owners.clone(),
            bucket: self.login.as_ref().and_then(|l| {
                let g = &l.grant;
                match direction {
                    Direction::Upload => self.shared.buckets.get(&g.user, true, g.rate_up),
                    Direction::Download => self.shared.buckets.get(&g.user, false, g.rate_down),
                    Direction::Listing => None,
                }
            }),
        };
        let quota = self.upload_quota.take();
        params.charge = quota.as_ref().and_then(|q| q.charge.clone());
        let upload = match &job {
            Job::Receive {
                into: Receiving::Object(upload),
                ..
            } => Some(upload.clone()),
            _ => None,
        };
        let size = match &job {
            Job::Send {
                from: Sending::File { left, .. },
                ..
            } => Some(*left),
            _ => None,
        };
        let handle = tokio::spawn(transfer::run(params, job).in_current_span());
        if let Ok(mut v) = self.listed.view.transfer.lock() {
            *v = Some(crate::observe::TransferView {
                direction: direction.as_str(),
                path: lossy(path.as_bytes()),
                progress: progress.clone(),
                started: Instant::now(),
                size,
            });
        }
        self.transfer = Some(Box::new(Running {
            handle,
            cancel,
            progress,
            direction,
            path,
            started: Instant::now(),
            done,
            ascii: self.ty == TransferType::Ascii,
            commit,
            upload,
            quota,
        }));
        Ok(None)
    }

    /// Whether the client has closed the control connection, without waiting. A line that
    /// is already there is queued, not lost.
    pub(super) async fn control_closed_now(&mut self) -> bool {
        match tokio::time::timeout(Duration::ZERO, self.ctrl.next()).await {
            Ok(Event::Closed) => true,
            Ok(Event::Line(line)) => {
                self.queued.push_front(line);
                false
            }
            _ => false,
        }
    }

    pub(super) fn log_transfer(&self, t: &Running, bytes: u64, result: &str, tls: Option<Outcome>) {
        if let Ok(mut v) = self.listed.view.transfer.lock() {
            *v = None;
        }
        self.shared.metrics.transfer(
            t.direction.as_str(),
            result.starts_with("ok"),
            bytes,
            t.started.elapsed().as_secs_f64(),
        );
        info!(
            user = self.login.as_ref().map_or("", |l| l.grant.user.as_str()),
            path = %lossy(t.path.as_bytes()),
            direction = t.direction.as_str(),
            bytes,
            duration_ms = t.started.elapsed().as_millis() as u64,
            result,
            tls = tls.is_some_and(|o| o.tls),
            tls_resumed = tls.is_some_and(|o| o.resumed),
            "transfer"
        );
        if let (Some(x), Some(login), true) = (
            &self.shared.xferlog,
            &self.login,
            t.direction != Direction::Listing,
        ) {
            let end = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            x.record(&crate::observe::XferRecord {
                end,
                seconds: t.started.elapsed().as_secs_f64().round() as u64,
                client: self.peer.to_string(),
                bytes,
                path: t.path.as_bytes().to_vec(),
                ascii: t.ascii,
                incoming: t.direction == Direction::Upload,
                anonymous: login.grant.anonymous,
                user: login
                    .email
                    .clone()
                    .unwrap_or_else(|| login.grant.user.clone()),
                complete: result.starts_with("ok"),
            });
        }
    }

    pub(super) async fn finish_transfer(
        &mut self,
        res: Result<Result<Outcome, TransferError>, JoinError>,
    ) -> std::io::Result<()> {
        let Some(mut t) = self.transfer.take() else {
            return Ok(());
        };
        // Released once the upload is settled, before the reply.
        let lock = self.upload_lock.take();
        self.quota_before_commit(&mut t.quota).await;
        let bytes = t.progress.load(Ordering::Relaxed);
        let mut ok = matches!(&res, Ok(Ok(_)))
            || matches!(&res, Ok(Err(TransferError::Data(DataError::Tls(e))))
                if t.direction == Direction::Upload
                    && e.kind() == std::io::ErrorKind::UnexpectedEof);
        // A client killed mid-upload closes both connections; the data connection's end
        // looks like a complete file. If the control connection is gone too, it was not.
        if ok && (t.commit.is_some() || t.upload.is_some()) && self.control_closed_now().await {
            ok = false;
        }
        if let Some(upload) = t.upload.take() {
            let mut upload = upload.lock().await;
            if ok {
                if let Err(e) = Box::pin(upload.finish()).await {
                    Box::pin(upload.abort()).await;
                    self.log_transfer(&t, bytes, "commit failed", None);
                    return self.send(e.reply(Op::Store)).await;
                }
            } else if matches!(&res, Ok(Err(TransferError::File(_)))) {
                Box::pin(upload.abort()).await;
            } else {
                // The client went away: what is stored stays resumable.
                Box::pin(upload.interrupt()).await;
            }
        }
        let mut done = t.done.clone();
        if let Some(commit) = t.commit.take() {
            // As on S3: a client gone keeps what it sent for a resume; a failing file not.
            let gone = !ok
                && !matches!(
                    &res,
                    Ok(Err(TransferError::File(_) | TransferError::Cancelled)) | Err(_)
                );
            match self.settle_upload(&commit, ok, gone).await {
                Ok(Some(stored)) if stored != *commit.target.path() => {
                    t.path = stored.clone();
                    done = done_reply(&stored, true);
                }
                Ok(_) => {}
                Err(r) if ok => {
                    self.log_transfer(&t, bytes, "commit failed", None);
                    return self.send(r).await;
                }
                Err(_) => {}
            }
        }
        let over = matches!(&res, Ok(Err(TransferError::File(Error::OverQuota))));
        self.settle_quota(t.quota.take(), &t.path, over).await;
        if let Some(lock) = lock {
            Box::pin(lock.release()).await;
        }
        if ok && t.direction == Direction::Upload {
            self.upload_hook(&t.path).await;
        }
        let r = match res {
            Ok(Ok(o)) => {
                self.log_transfer(&t, o.bytes, "ok", Some(o));
                done
            }
            // A client that ends a 0-byte TLS upload before the data handshake completes
            // (Node basic-ftp) has sent an empty file; the file is already there.
            Ok(Err(TransferError::Data(DataError::Tls(e))))
                if t.direction == Direction::Upload
                    && e.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                self.log_transfer(&t, 0, "ok (empty, data TLS cut short)", None);
                done
            }
            Ok(Err(e)) => {
                self.log_transfer(&t, bytes, &e.to_string(), None);
                e.reply(t.direction == Direction::Upload)
            }
            Err(_) => {
                self.log_transfer(&t, bytes, "failed", None);
                replies::LOCAL_ERROR.reply()
            }
        };
        self.send(r).await
    }

    /// Stops the running transfer, if any: its task is aborted (closing the data
    /// connection) and the transfer is logged with `why`. An upload stays `resumable`
    /// (the session ends under it) or is discarded (ABOR).
    /// Returns whether there was one.
    pub(super) async fn cancel_transfer(&mut self, why: &str, resumable: bool) -> bool {
        let Some(mut t) = self.transfer.take() else {
            return false;
        };
        let lock = self.upload_lock.take();
        t.cancel.cancel();
        // An upload first writes out what it has received (bounded); anything else, and
        // an upload that does not stop in time, ends at once.
        let stopped = t.direction == Direction::Upload
            && tokio::time::timeout(crate::limits::UPLOAD_STOP_WITHIN, &mut t.handle)
                .await
                .is_ok();
        if !stopped {
            t.handle.abort();
            let _ = (&mut t.handle).await;
        }
        self.quota_before_commit(&mut t.quota).await;
        if let Some(commit) = t.commit.take() {
            let _ = self.settle_upload(&commit, false, resumable).await;
        }
        if let Some(upload) = t.upload.take() {
            let mut upload = upload.lock().await;
            if resumable {
                Box::pin(upload.interrupt()).await;
            } else {
                Box::pin(upload.abort()).await;
            }
        }
        self.settle_quota(t.quota.take(), &t.path, false).await;
        if let Some(lock) = lock {
            Box::pin(lock.release()).await;
        }
        self.log_transfer(&t, t.progress.load(Ordering::Relaxed), why, None);
        true
    }

    pub(super) async fn abort_transfer(&mut self) -> std::io::Result<()> {
        let Some(mut t) = self.transfer.take() else {
            return self.send(replies::NO_TRANSFER_TO_ABORT.reply()).await;
        };
        if t.handle.is_finished() {
            let res = (&mut t.handle).await;
            self.transfer = Some(t);
            self.finish_transfer(res).await?;
            return self.send(replies::NO_TRANSFER_TO_ABORT.reply()).await;
        }
        self.transfer = Some(t);
        self.cancel_transfer("aborted", false).await;
        self.send(replies::CONNECTION_CLOSED_ABORTED.reply())
            .await?;
        self.send(replies::ABORTED.reply()).await
    }
}
