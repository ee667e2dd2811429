//! STOR, APPE, STOU: where an upload goes (overwrite, drop box, unique names, atomic commit),
//! and what happens to it once the transfer ends.

use super::*;
use lifecycle::UploadQuota;

pub(super) enum Store {
    Stor(Vec<u8>),
    Appe(Vec<u8>),
    Stou(Option<Vec<u8>>),
}

/// The 226 of an upload; names the stored file when it is not the one asked for.
pub(super) fn done_reply(target: &VPath, name_it: bool) -> Reply {
    if !name_it {
        return replies::TRANSFER_COMPLETE.reply();
    }
    let mut text = b"Transfer complete; stored as ".to_vec();
    text.extend_from_slice(target.file_name().unwrap_or(b""));
    text.push(b'.');
    Reply::new(Code::ClosingData, text)
}

/// The first of `name.1`, `name.2`, … next to `target` that does not exist.
async fn free_name(jail: &Jail, target: &Authorized) -> Result<Authorized, Reply> {
    let base = target.file_name().unwrap_or(b"file").to_vec();
    for i in 1..=limits::MAX_UNIQUE_TRIES {
        let mut name = base.clone();
        name.extend_from_slice(format!(".{i}").as_bytes());
        let candidate = target.with_name(&name).map_err(|e| e.reply(Op::Store))?;
        if !jail
            .exists(&candidate)
            .await
            .map_err(|e| e.reply(Op::Store))?
        {
            return Ok(candidate);
        }
    }
    Err(Error::Exists.reply(Op::Store))
}

/// The name a no-overwrite upload goes to: `target` if free, else (with `unique`) the
/// first free `name.N`, else refused.
async fn claim_name(jail: &Jail, target: Authorized, unique: bool) -> Result<Authorized, Reply> {
    if !jail.exists(&target).await.map_err(|e| e.reply(Op::Store))? {
        return Ok(target);
    }
    if !unique {
        return Err(Error::Exists.reply(Op::Store));
    }
    free_name(jail, &target).await
}

/// Moves a finished atomic upload under its name. Returns the name it got.
async fn commit_upload(jail: &Jail, c: &Commit) -> Result<VPath, Reply> {
    if c.replace {
        // The file replaced keeps its permission bits, as when written in place (never
        // setuid, setgid or sticky: chmod refuses those).
        if let Ok(old) = jail.stat(c.target.path()).await
            && old.kind == Kind::File
        {
            let _ = jail.chmod(&c.temp, old.mode & 0o777).await;
        }
        jail.rename(&c.temp, &c.target)
            .await
            .map_err(|e| e.reply(Op::Store))?;
        return Ok(c.target.path().clone());
    }
    // A hard link never replaces: a name taken meanwhile is refused or skipped.
    let mut target = c.target.clone();
    loop {
        match jail.link(&c.temp, &target).await {
            Ok(()) => break,
            Err(Error::Exists) if c.unique => target = free_name(jail, &c.target).await?,
            Err(e) => {
                let _ = jail.remove_file(&c.temp).await;
                return Err(e.reply(Op::Store));
            }
        }
    }
    let _ = jail.remove_file(&c.temp).await;
    Ok(target.path().clone())
}

/// An atomic upload replaces a regular file only, as writing in place would: a directory,
/// FIFO or device under the name is refused now rather than renamed over at the end.
async fn only_a_file_is_replaced(jail: &Jail, target: Authorized) -> Result<Authorized, Reply> {
    match jail.stat(target.path()).await {
        Ok(e) if e.kind == Kind::Dir => Err(Error::IsADirectory.reply(Op::Store)),
        Ok(e) if e.kind != Kind::File => Err(Error::NotRegular.reply(Op::Store)),
        _ => Ok(target),
    }
}

/// REST n + STOR, or APPE, of a name whose interrupted upload waits hidden: it goes on
/// (at its end only: any other offset is refused naming the one that works) and appears
/// when complete. `None` when no interrupted upload waits.
async fn resume_sink(
    jail: &Jail,
    target: &Authorized,
    mode: WriteMode,
) -> Result<Option<(Sink, Authorized, Option<Commit>)>, Reply> {
    let resume = target.upload_resume();
    let have = match jail.stat(resume.path()).await {
        Ok(e) if e.kind == Kind::File => e.size,
        _ => return Ok(None),
    };
    if let WriteMode::At(n) = mode
        && n != have
    {
        return Err(Error::ResumeAt(have).reply(Op::Store));
    }
    // Under a fresh hidden name while it is written: a second resume finds nothing.
    let temp = target.upload_temp();
    jail.rename(&resume, &temp)
        .await
        .map_err(|e| e.reply(Op::Store))?;
    let sink = jail
        .open_write(&temp, WriteMode::Append)
        .await
        .map_err(|e| e.reply(Op::Store))?;
    let commit = Commit {
        temp,
        target: target.clone(),
        replace: target.perms().overwrite,
        unique: false,
        resumable: true,
    };
    Ok(Some((sink, target.clone(), Some(commit))))
}

/// Creates `name.1`, `name.2`, … next to `target`, whichever is free first.
async fn unique_create(jail: &Jail, target: &Authorized) -> Result<(Sink, Authorized), Reply> {
    let base = target.file_name().unwrap_or(b"file").to_vec();
    for i in 1..=limits::MAX_UNIQUE_TRIES {
        let mut name = base.clone();
        name.extend_from_slice(format!(".{i}").as_bytes());
        let candidate = target.with_name(&name).map_err(|e| e.reply(Op::Store))?;
        match jail.open_write(&candidate, WriteMode::CreateNew).await {
            Ok(f) => return Ok((f, candidate)),
            Err(Error::Exists) => continue,
            Err(e) => return Err(e.reply(Op::Store)),
        }
    }
    Err(Error::Exists.reply(Op::Store))
}

impl Session {
    pub(super) async fn store(&mut self, how: Store) -> Result<Option<Reply>, Reply> {
        let (jail, rules) = self.access()?;
        let (target, mode, unique) = self.upload_target(&jail, &rules, &how).await?;
        self.need_data()?;
        // Refused by a TLS policy before anything is opened under the name.
        if !self.prot_private && self.data_policy() == TlsData::Required {
            return Err(replies::DATA_TLS_REQUIRED.reply());
        }
        if let Some(c) = self.shared.cluster.clone() {
            // One writer per name across the nodes, held until the transfer ends.
            let lock = Box::pin(c.lock_upload(&jail.lock_key(&target)))
                .await
                .map_err(|e| e.reply(Op::Store))?;
            self.upload_lock = Some(Box::new(lock));
        }
        let requested = target.clone();
        let mut quota = self.quota_admit(&jail, &target, mode, unique).await?;
        let (sink, target, commit) = self.open_sink(&jail, target, mode, unique).await?;
        if let Some(q) = quota.as_mut()
            && q.before.bytes > q.before.file.unwrap_or(0)
            && !jail.exists(&target.upload_resume()).await.unwrap_or(true)
        {
            // It continues an interrupted upload, whose bytes are counted already.
            q.resumed = q.before.bytes - q.before.file.unwrap_or(0);
        }
        self.upload_quota = quota.map(|mut q| {
            let in_place = commit.is_none() && matches!(sink, Sink::File(_));
            q.rollback = in_place.then_some(match mode {
                WriteMode::Append | WriteMode::At(_) => q.before.file,
                _ => None,
            });
            Box::new(q)
        });
        let stou = matches!(how, Store::Stou(_));
        let opening = if stou {
            let mut text = b"FILE: ".to_vec();
            text.extend_from_slice(target.file_name().unwrap_or(b""));
            Reply::new(Code::OpeningData, text)
        } else {
            replies::SEND_DATA.reply()
        };
        let done = done_reply(&target, stou || target != requested);
        let ascii = self.ty == TransferType::Ascii;
        let into = match sink {
            Sink::File(file) => Receiving::File(file),
            Sink::Object(upload) => Receiving::Object(Arc::new(tokio::sync::Mutex::new(*upload))),
        };
        let job = Job::Receive { into, ascii };
        let path = target.path().clone();
        let started = self
            .start(job, opening, Direction::Upload, path, done, commit)
            .await;
        if started.is_err() {
            // Refused before the transfer began (a TLS policy): nothing of it may linger
            // for the next transfer.
            self.upload_quota = None;
            if let Some(lock) = self.upload_lock.take() {
                Box::pin(lock.release()).await;
            }
        }
        started
    }

    /// Where an upload goes and how it is opened, as the rules at that name allow:
    /// (target, mode, take a unique name when the name is taken).
    async fn upload_target(
        &mut self,
        jail: &Jail,
        rules: &Rules,
        how: &Store,
    ) -> Result<(Authorized, WriteMode, bool), Reply> {
        let rest = std::mem::take(&mut self.rest);
        let collision = self
            .login
            .as_ref()
            .map(|l| l.grant.collision)
            .unwrap_or_default();
        let deny = || Error::Denied.reply(Op::Store);
        match how {
            Store::Stor(arg) => {
                let target = self.resolve(arg, Op::Store)?;
                let target = rules
                    .authorize(target, |p| p.resume || p.overwrite || p.upload)
                    .map_err(|e| e.reply(Op::Store))?;
                let perms = target.perms();
                let exists = jail.exists(&target).await.map_err(|e| e.reply(Op::Store))?;
                if rest > 0 {
                    if !perms.resume {
                        return Err(deny());
                    }
                    if self.ty == TransferType::Ascii {
                        return Err(replies::RESUME_NEEDS_IMAGE.reply());
                    }
                    Ok((target, WriteMode::At(rest), false))
                } else if perms.overwrite && (exists || perms.upload) {
                    Ok((target, WriteMode::Truncate, false))
                } else if perms.upload {
                    // The name may be taken: refused (553) or stored under a unique name.
                    Ok((target, WriteMode::CreateNew, collision == Collision::Unique))
                } else {
                    Err(deny())
                }
            }
            Store::Appe(arg) => {
                let target = self.resolve(arg, Op::Store)?;
                let target = rules
                    .authorize(target, |p| p.append)
                    .map_err(|e| e.reply(Op::Store))?;
                let exists = jail.exists(&target).await.map_err(|e| e.reply(Op::Store))?;
                if !exists && !target.perms().upload {
                    return Err(deny());
                }
                Ok((target, WriteMode::Append, false))
            }
            Store::Stou(hint) => {
                let base = hint.as_deref().filter(|h| !h.is_empty()).unwrap_or(b"stou");
                let (_, target) = self.allowed(base, Op::Store, |p| p.upload)?;
                Ok((target, WriteMode::CreateNew, true))
            }
        }
    }

    /// Opens what the upload writes to: the object (S3, atomic by itself), a hidden
    /// sibling committed when complete (atomic uploads), or the file itself.
    async fn open_sink(
        &self,
        jail: &Jail,
        target: Authorized,
        mode: WriteMode,
        unique: bool,
    ) -> Result<(Sink, Authorized, Option<Commit>), Reply> {
        let whole = jail.uploads_appear_whole();
        let atomic_login = self.login.as_ref().is_some_and(|l| l.grant.atomic) && !whole;
        let atomic = atomic_login && matches!(mode, WriteMode::Truncate | WriteMode::CreateNew);
        let binary = self.ty == TransferType::Image;
        if atomic_login
            && binary
            && matches!(mode, WriteMode::At(_) | WriteMode::Append)
            && let Some(resumed) = resume_sink(jail, &target, mode).await?
        {
            return Ok(resumed);
        }
        if whole && mode == WriteMode::CreateNew {
            let target = claim_name(jail, target, unique).await?;
            let sink = jail
                .open_write(&target, mode)
                .await
                .map_err(|e| e.reply(Op::Store))?;
            return Ok((sink, target, None));
        }
        if atomic {
            // Refuse a taken name now rather than after the whole upload.
            let target = if mode == WriteMode::CreateNew {
                claim_name(jail, target, unique).await?
            } else {
                only_a_file_is_replaced(jail, target).await?
            };
            let temp = target.upload_temp();
            let sink = jail
                .open_write(&temp, WriteMode::CreateNew)
                .await
                .map_err(|e| e.reply(Op::Store))?;
            let commit = Commit {
                temp,
                target: target.clone(),
                replace: mode == WriteMode::Truncate,
                unique,
                resumable: binary && !unique && target.perms().resume,
            };
            return Ok((sink, target, Some(commit)));
        }
        match jail.open_write(&target, mode).await {
            Ok(f) => Ok((f, target, None)),
            Err(Error::Exists) if unique => {
                let (f, t) = unique_create(jail, &target).await?;
                Ok((f, t, None))
            }
            Err(e) => Err(e.reply(Op::Store)),
        }
    }

    /// Before an upload: refused (552) when the login's root is full; else what its end
    /// must count. `None` when no login has a quota.
    async fn quota_admit(
        &self,
        jail: &Jail,
        target: &Authorized,
        mode: WriteMode,
        unique: bool,
    ) -> Result<Option<UploadQuota>, Reply> {
        let quotas = &self.shared.quotas;
        let Some(login) = self.login.as_ref().filter(|_| quotas.active()) else {
            return Ok(None);
        };
        let before = Footprint::of(jail, target).await;
        let charge = match login.grant.quota {
            q if q.is_set() => {
                let new_name = unique || mode == WriteMode::CreateNew || before.file.is_none();
                let replaces = mode == WriteMode::Truncate;
                let c = quotas
                    .admit(jail, q, before, new_name, replaces)
                    .await
                    .map_err(|e| e.reply(Op::Store))?;
                Some(Arc::new(c))
            }
            _ => None,
        };
        Ok(Some(UploadQuota {
            charge,
            target: target.clone(),
            before,
            resumed: 0,
            rollback: None,
        }))
    }

    /// Just before an upload is committed (moved under its name, or completed on S3): the
    /// name is measured again, so that whatever else changed it during the transfer (a
    /// concurrent upload of the same name) is not counted twice. A write in place keeps
    /// the measure from its start, as the name has been changing since.
    pub(super) async fn quota_before_commit(&self, q: &mut Option<Box<UploadQuota>>) {
        let (Some(q), Some(login)) = (q.as_mut(), &self.login) else {
            return;
        };
        if q.rollback.is_some() {
            return;
        }
        // What an interrupted upload it continues had stored was counted, and is now in
        // its hidden temporary name.
        let mut now = Footprint::of(&login.jail, &q.target).await;
        now.bytes += q.resumed;
        q.before = now;
    }

    /// Counts what an ended upload changed (stored under `stored`); one stopped by its
    /// quota while writing in place is cut back first, so it leaves nothing.
    pub(super) async fn settle_quota(
        &self,
        q: Option<Box<UploadQuota>>,
        stored: &VPath,
        over: bool,
    ) {
        let (Some(q), Some(login)) = (q, &self.login) else {
            return;
        };
        let jail = &login.jail;
        if over && let Some(rollback) = q.rollback {
            let _ = match rollback {
                Some(len) => jail.truncate(&q.target, len).await,
                None => match q.target.with_name(stored.file_name().unwrap_or(b"")) {
                    Ok(file) => jail.remove_file(&file).await,
                    Err(e) => Err(e),
                },
            };
        }
        let quotas = &self.shared.quotas;
        let (bytes, files) = Footprint::of(jail, &q.target).await.since(q.before);
        quotas.changed(jail, &q.target, bytes, files).await;
        if stored != q.target.path() {
            let f = Footprint::of(jail, stored).await;
            quotas
                .changed(jail, stored, f.bytes as i64, f.files as i64)
                .await;
        }
        // The charge ends only now that the upload is in the count.
        drop(q);
    }

    /// Tells the upload hooks about a stored file.
    pub(super) async fn upload_hook(&self, path: &VPath) {
        let hooks = self.shared.hooks();
        let (Some(login), true) = (&self.login, hooks.enabled()) else {
            return;
        };
        let size = login.jail.stat(path).await.map(|e| e.size).unwrap_or(0);
        hooks.uploaded(crate::hooks::UploadEvent {
            event: "upload",
            path: lossy(path.as_bytes()),
            file: login.jail.host_path(path),
            user: login.grant.user.clone(),
            client: self.peer.to_string(),
            size,
        });
    }

    /// Ends an atomic upload: moves it under its name when it completed (or when failed
    /// uploads are kept); keeps it hidden for a resume when the client went away (`gone`)
    /// from a resumable upload; else removes it. Returns the name it was stored under.
    pub(super) async fn settle_upload(
        &self,
        c: &Commit,
        completed: bool,
        gone: bool,
    ) -> Result<Option<VPath>, Reply> {
        let Some(login) = &self.login else {
            return Ok(None);
        };
        let jail = &login.jail;
        let keep = self.cfg.failed_uploads == crate::config::FailedUploads::Keep;
        if completed || keep {
            let stored = commit_upload(jail, c).await?;
            // A complete upload of the name ends any interrupted one.
            let _ = jail.remove_file(&c.target.upload_resume()).await;
            return Ok(Some(stored));
        }
        if gone && c.resumable {
            let resume = c.target.upload_resume();
            if jail.rename(&c.temp, &resume).await.is_ok() {
                return Ok(None);
            }
        }
        let _ = jail.remove_file(&c.temp).await;
        Ok(None)
    }
}
