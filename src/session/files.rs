//! Navigation and file commands that need no data connection: PWD, CWD, MKD, RMD, DELE,
//! RNFR/RNTO, SIZE, MDTM, MFMT, SITE, STAT of a path, MLST; and RETR.

use super::*;

pub(super) fn perm_fact(e: &Entry, perms: Perms) -> Vec<u8> {
    if e.kind == Kind::Dir {
        perms.dir_fact()
    } else {
        perms.file_fact()
    }
}

/// SIZE in TYPE A: the bytes a download would send (every LF becomes CRLF).
pub(super) async fn ascii_size(jail: &Jail, target: &Authorized, size: u64) -> Result<u64, Reply> {
    if size > limits::MAX_ASCII_SIZE_SCAN {
        return Err(replies::ASCII_SIZE_TOO_LARGE.reply());
    }
    let (source, _) = jail
        .open_read(target, 0)
        .await
        .map_err(|e| e.reply(Op::Other))?;
    let file = match source {
        Source::File(f) => f,
        Source::Stream(mut stream) => {
            use futures_util::StreamExt;
            let mut total = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|_| Error::Storage.reply(Op::Other))?;
                total += wharf_proto::ascii::encoded_len(&chunk);
            }
            return Ok(total);
        }
    };
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = file;
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            match file.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => total += wharf_proto::ascii::encoded_len(&buf[..n]),
                Err(e) => return Err(Error::from(e).reply(Op::Other)),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err(replies::LOCAL_ERROR.reply()))
}

impl Session {
    /// Runs `op`, a change of the files at `paths`, and counts what it changed there in
    /// the quotas (when some login has one).
    pub(super) async fn counting<T>(
        &self,
        jail: &Jail,
        paths: &[&VPath],
        op: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let quotas = &self.shared.quotas;
        if !quotas.active() {
            return op.await;
        }
        let mut before = Vec::with_capacity(paths.len());
        for p in paths {
            before.push(Footprint::of(jail, p).await);
        }
        let out = op.await?;
        for (p, b) in paths.iter().zip(before) {
            let (bytes, files) = Footprint::of(jail, p).await.since(b);
            quotas.changed(jail, p, bytes, files).await;
        }
        Ok(out)
    }

    /// SITE QUOTA: what the login's root holds, and its limits.
    async fn site_quota(&self) -> Result<Reply, Reply> {
        let login = self.login()?;
        let q = login.grant.quota;
        if !q.is_set() {
            // Nothing to count against: no stranger makes wharf walk a big public tree.
            let text = format!("No quota for {}.", login.grant.user);
            return Ok(Reply::new(Code::Ok, text));
        }
        let usage = self
            .shared
            .quotas
            .usage(&login.jail)
            .await
            .map_err(|e| e.reply(Op::Other))?;
        let of = |n: u64, limit: Option<u64>| match limit {
            Some(l) => format!("{n} of {l}"),
            None => format!("{n} (no limit)"),
        };
        Ok(Reply::multi(
            Code::Ok,
            vec![
                format!("Quota of {}:", login.grant.user).into_bytes(),
                format!(" Bytes: {}", of(usage.bytes, q.bytes)).into_bytes(),
                format!(" Files: {}", of(usage.files, q.files)).into_bytes(),
                b"End.".to_vec(),
            ],
        ))
    }

    /// The login's jail and rules (for handlers that check more than one path).
    pub(super) fn access(&self) -> Result<(Jail, Arc<Rules>), Reply> {
        let login = self.login()?;
        Ok((login.jail.clone(), login.grant.rules.clone()))
    }

    /// Resolves a client's path and checks what the rules there allow, in one step, so no
    /// handler can act on a path it did not check: `may` is asked of the permissions at
    /// the path, and a refusal is the reply the table gives for `op`.
    pub(super) fn allowed(
        &self,
        arg: &[u8],
        op: Op,
        may: impl Fn(&Perms) -> bool,
    ) -> Result<(Jail, Authorized), Reply> {
        let (jail, rules) = self.access()?;
        let target = self.resolve(arg, op)?;
        let target = rules.authorize(target, may).map_err(|e| e.reply(op))?;
        Ok((jail, target))
    }

    /// PWD (RFC 959): 257 and the quoted directory.
    pub(super) fn pwd(&self) -> Result<Reply, Reply> {
        self.login()?;
        let mut text = quote_path(self.cwd.as_bytes());
        text.extend_from_slice(b" is the current directory.");
        Ok(Reply::new(Code::PathCreated, text))
    }

    /// CWD, or CDUP with `None`.
    pub(super) async fn cwd_to(&mut self, arg: Option<&[u8]>) -> Result<Reply, Reply> {
        let (jail, _) = self.access()?;
        let target = match arg {
            Some(arg) => self.resolve(arg, Op::Other)?,
            None => self.cwd.parent(),
        };
        self.change_dir(&jail, target).await
    }

    pub(super) async fn mkd(&mut self, arg: &[u8]) -> Result<Reply, Reply> {
        let (jail, target) = self.allowed(arg, Op::Other, |p| p.mkdir)?;
        jail.mkdir(&target).await.map_err(|e| e.reply(Op::Other))?;
        let mut text = quote_path(target.as_bytes());
        text.extend_from_slice(b" created.");
        Ok(Reply::new(Code::PathCreated, text))
    }

    pub(super) async fn rmd(&mut self, arg: &[u8]) -> Result<Reply, Reply> {
        let (jail, target) = self.allowed(arg, Op::Other, |p| p.rmdir)?;
        jail.rmdir(&target).await.map_err(|e| e.reply(Op::Other))?;
        Ok(replies::DIRECTORY_REMOVED.reply())
    }

    pub(super) async fn dele(&mut self, arg: &[u8]) -> Result<Reply, Reply> {
        let (jail, target) = self.allowed(arg, Op::Other, |p| p.delete)?;
        let removed = jail.remove_file(&target);
        self.counting(&jail, &[target.path()], removed)
            .await
            .map_err(|e| e.reply(Op::Other))?;
        Ok(replies::DELETED.reply())
    }

    pub(super) async fn rnfr(&mut self, arg: &[u8]) -> Result<Reply, Reply> {
        let (jail, target) = self.allowed(arg, Op::Other, |p| p.rename)?;
        if !jail.exists(&target).await.map_err(|e| e.reply(Op::Other))? {
            return Err(Error::NotFound.reply(Op::Other));
        }
        self.rename_from = Some(target.path().clone());
        Ok(replies::READY_FOR_RNTO.reply())
    }

    /// RNTO: judged against every rule at or below both names (see `Rules::may_rename`).
    pub(super) async fn rnto(&mut self, arg: &[u8], from: Option<VPath>) -> Result<Reply, Reply> {
        let (jail, rules) = self.access()?;
        let Some(from) = from else {
            return Err(replies::RNFR_FIRST.reply());
        };
        let to = self.resolve(arg, Op::Store)?;
        let (from, to) = rules
            .authorize_rename(from, to)
            .map_err(|e| e.reply(Op::Store))?;
        let quotas = self.shared.quotas.clone();
        let dir = quotas.active()
            && jail
                .stat(from.path())
                .await
                .is_ok_and(|e| e.kind == Kind::Dir);
        let renamed = jail.rename(&from, &to);
        if dir {
            renamed.await.map_err(|e| e.reply(Op::Store))?;
            quotas.moved_dir(&jail, from.path(), to.path()).await;
        } else {
            self.counting(&jail, &[from.path(), to.path()], renamed)
                .await
                .map_err(|e| e.reply(Op::Store))?;
        }
        Ok(replies::RENAMED.reply())
    }

    /// SIZE (RFC 3659): the bytes a RETR in the current TYPE would send.
    pub(super) async fn size(&mut self, arg: &[u8]) -> Result<Reply, Reply> {
        let (jail, target) = self.allowed(arg, Op::Other, |p| p.read || p.list)?;
        let size = match self.ty {
            // On S3 this is what an interrupted upload of the name has stored, so that
            // `curl -C -` and lftp resume it.
            TransferType::Image => jail.size(&target).await.map_err(|e| e.reply(Op::Other))?,
            TransferType::Ascii => {
                let e = jail.stat(&target).await.map_err(|e| e.reply(Op::Other))?;
                if e.kind != Kind::File {
                    return Err(replies::NOT_A_REGULAR_FILE.reply());
                }
                ascii_size(&jail, &target, e.size).await?
            }
        };
        Ok(Reply::new(Code::FileStatus, size.to_string()))
    }

    /// MFMT (draft-somers-ftp-mfxx): sets the time, answers with the time now stored.
    pub(super) async fn mfmt(
        &mut self,
        mtime: time::OffsetDateTime,
        path: &[u8],
    ) -> Result<Reply, Reply> {
        let (jail, target) = self.allowed(path, Op::Other, |p| p.mtime)?;
        let now = jail
            .set_mtime(&target, SystemTime::from(mtime))
            .await
            .map_err(|e| e.reply(Op::Other))?;
        let mut text = b"Modify=".to_vec();
        listing::time_val(now, &mut text);
        text.extend_from_slice(b"; ");
        text.extend_from_slice(path);
        Ok(Reply::new(Code::FileStatus, text))
    }

    pub(super) async fn site(&mut self, site: Site) -> Result<Reply, Reply> {
        match site {
            Site::Help => Ok(Reply::multi(
                Code::Help,
                vec![
                    b"SITE commands:".to_vec(),
                    b" CHMOD <octal-mode> <path>".to_vec(),
                    b" UTIME <YYYYMMDDHHMMSS> <path>".to_vec(),
                    b" QUOTA".to_vec(),
                    b" HELP".to_vec(),
                    b"End.".to_vec(),
                ],
            )),
            Site::Quota => self.site_quota().await,
            Site::Chmod { mode, path } => {
                let (jail, target) = self.allowed(&path, Op::Other, |p| p.chmod)?;
                jail.chmod(&target, mode)
                    .await
                    .map_err(|e| e.reply(Op::Other))?;
                Ok(replies::CHMOD_OK.reply())
            }
            Site::Utime { mtime, path } => {
                let (jail, target) = self.allowed(&path, Op::Other, |p| p.mtime)?;
                jail.set_mtime(&target, SystemTime::from(mtime))
                    .await
                    .map_err(|e| e.reply(Op::Other))?;
                Ok(replies::MTIME_SET.reply())
            }
        }
    }

    /// STAT with a path (RFC 959): the listing on the control connection.
    pub(super) async fn stat_path(&mut self, arg: &[u8]) -> Result<Reply, Reply> {
        let args = command_list_args(arg);
        let path = args.path.as_deref().unwrap_or(b"");
        let (jail, target) = self.allowed(path, Op::Status, |p| p.list)?;
        let top = jail.stat(&target).await.map_err(|e| e.reply(Op::Status))?;
        let body = self
            .listing(&jail, &target, ListFormat::List, b"")
            .await
            .map_err(|e| e.reply(Op::Status))?;
        let mut lines = vec![format!("Status of {}:", lossy(target.as_bytes())).into_bytes()];
        lines.extend(
            body.split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec()),
        );
        lines.push(b"End of status.".to_vec());
        // RFC 959: 212 directory status, 213 file status.
        let code = if top.kind == Kind::Dir {
            Code::DirectoryStatus
        } else {
            Code::FileStatus
        };
        Ok(Reply::multi(code, lines))
    }

    /// MLST (RFC 3659): one entry's facts on the control connection.
    pub(super) async fn mlst(&mut self, arg: Option<&[u8]>) -> Result<Reply, Reply> {
        let (jail, target) = self.allowed(arg.unwrap_or(b""), Op::Other, |p| p.list)?;
        let e = jail.stat(&target).await.map_err(|e| e.reply(Op::Other))?;
        let mut line = b" ".to_vec();
        listing::facts_line(
            &e,
            self.facts,
            &perm_fact(&e, target.perms()),
            target.as_bytes(),
            &mut line,
        );
        Ok(Reply::multi(
            Code::FileActionOk,
            vec![
                format!("Listing {}", lossy(target.as_bytes())).into_bytes(),
                line,
                b"End.".to_vec(),
            ],
        ))
    }

    pub(super) async fn change_dir(&mut self, jail: &Jail, target: VPath) -> Result<Reply, Reply> {
        let e = jail.stat(&target).await.map_err(|e| e.reply(Op::Other))?;
        if e.kind != Kind::Dir {
            return Err(Error::NotADirectory.reply(Op::Other));
        }
        self.cwd = target;
        Ok(replies::DIRECTORY_CHANGED.reply())
    }

    pub(super) async fn mdtm(&mut self, arg: &[u8]) -> Result<Reply, Reply> {
        let (jail, rules) = self.access()?;
        let (jail, rules) = (&jail, &*rules);
        // The set form `MDTM <time> <path>` (rclone, lftp) unless the whole argument names a file.
        let whole = self.resolve(arg, Op::Other)?;
        let existing = jail.stat(&whole).await;
        if existing.is_err()
            && let Some((mtime, path)) = command::split_time_prefix(arg)
        {
            let target = self.resolve(path, Op::Other)?;
            let target = rules
                .authorize(target, |p| p.mtime)
                .map_err(|e| e.reply(Op::Other))?;
            let now = jail
                .set_mtime(&target, SystemTime::from(mtime))
                .await
                .map_err(|e| e.reply(Op::Other))?;
            let mut text = Vec::new();
            listing::time_val(now, &mut text);
            return Ok(Reply::new(Code::FileStatus, text));
        }
        rules
            .authorize(whole, |p| p.read || p.list)
            .map_err(|e| e.reply(Op::Other))?;
        let e = existing.map_err(|e| e.reply(Op::Other))?;
        let mut text = Vec::new();
        listing::time_val(e.mtime, &mut text);
        Ok(Reply::new(Code::FileStatus, text))
    }

    pub(super) async fn retr(&mut self, arg: &[u8]) -> Result<Option<Reply>, Reply> {
        let (jail, rules) = self.access()?;
        let (jail, rules) = (&jail, &*rules);
        let rest = std::mem::take(&mut self.rest);
        let target = self.resolve(arg, Op::Other)?;
        let target = rules
            .authorize(target, |p| p.read)
            .map_err(|e| e.reply(Op::Other))?;
        self.need_data()?;
        let ascii = self.ty == TransferType::Ascii;
        let offset = if ascii { 0 } else { rest };
        let (source, size) = jail
            .open_read(&target, offset)
            .await
            .map_err(|e| e.reply(Op::Other))?;
        let mode = if ascii { "ASCII" } else { "BINARY" };
        let opening = Reply::new(
            Code::OpeningData,
            format!("Opening {mode} mode data connection ({size} bytes)."),
        );
        let skip = if ascii { rest } else { 0 };
        let from = match source {
            Source::Stream(stream) => Sending::Stream(stream),
            Source::File(file) => Sending::File {
                file,
                left: size.saturating_sub(offset),
                // sendfile from a thread of its own measured faster and cheaper than a
                // buffered copy on loopback and on a veth link alike (README, Performance).
                sendfile: self.cfg.sendfile != Sendfile::Never,
            },
        };
        let job = Job::Send { from, ascii, skip };
        self.start(
            job,
            opening,
            Direction::Download,
            target.path().clone(),
            replies::TRANSFER_COMPLETE.reply(),
            None,
        )
        .await
    }
}
