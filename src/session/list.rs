//! LIST, NLST, MLSD (RFC 959, 3659) and STAT of a directory: entries filtered, formatted and
//! sent in order, streamed page by page from S3.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ListFormat {
    List,
    Nlst,
    Mlsd,
}

/// STAT's argument takes `ls` flags like LIST's.
pub(super) fn command_list_args(arg: &[u8]) -> ListArgs {
    let mut line = b"LIST ".to_vec();
    line.extend_from_slice(arg);
    match command::parse(&line) {
        Ok(Command::List(a)) => a,
        _ => ListArgs::default(),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// How one listing formats its entries (LIST, NLST or MLSD lines).
pub(super) struct Lines {
    pub(super) format: ListFormat,
    pub(super) facts: Facts,
    pub(super) rules: Option<Arc<Rules>>,
    /// The directory the entries' names are relative to (for their permissions).
    pub(super) base_dir: VPath,
    /// NLST of a pattern: the directory part the client typed.
    pub(super) name_prefix: Vec<u8>,
    pub(super) now: i64,
}

impl Lines {
    /// Appends the line of `e`; uploads in progress are not there yet.
    pub(super) fn push(&self, e: &Entry, out: &mut Vec<u8>) {
        if e.name
            .starts_with(crate::vfs::UPLOAD_TEMP_PREFIX.as_bytes())
        {
            return;
        }
        match self.format {
            ListFormat::List => listing::list_line(e, self.now, out),
            ListFormat::Nlst => {
                out.extend_from_slice(&self.name_prefix);
                listing::nlst_line(&e.name, out)
            }
            ListFormat::Mlsd => {
                let perms = match &self.rules {
                    None => Perms::NONE,
                    Some(rules) => self
                        .base_dir
                        .resolve(&e.name)
                        .map_or(rules.base, |p| rules.at(&p)),
                };
                listing::facts_line(e, self.facts, &perm_fact(e, perms), &e.name, out);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

impl Session {
    /// Formats the listing of `target`. For LIST and NLST, a last component that names
    /// nothing but holds `*`, `?` or `[` is matched against the parent's entries (NLST
    /// names then carry `prefix`, the directory part the client typed).
    pub(super) async fn listing(
        &self,
        jail: &Jail,
        target: &VPath,
        format: ListFormat,
        prefix: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let rules = self.login.as_ref().map(|l| l.grant.rules.clone());
        let mut name_prefix: &[u8] = b"";
        // The directory the entries' names are relative to.
        let mut base_dir = target.parent();
        let entries = match jail.stat(target).await {
            Ok(top) if top.kind == Kind::Dir => {
                base_dir = target.clone();
                jail.list(target).await?
            }
            Ok(_) if format == ListFormat::Mlsd => return Err(Error::NotADirectory),
            Ok(top) => vec![top],
            Err(Error::NotFound)
                if format != ListFormat::Mlsd
                    && target.file_name().is_some_and(glob::is_pattern) =>
            {
                let pattern = target.file_name().unwrap_or_default();
                let matched: Vec<Entry> = jail
                    .list(&target.parent())
                    .await?
                    .into_iter()
                    .filter(|e| glob::matches(pattern, &e.name))
                    .collect();
                if matched.is_empty() {
                    return Err(Error::NotFound);
                }
                name_prefix = prefix;
                matched
            }
            Err(e) => return Err(e),
        };
        let lines = Lines {
            format,
            facts: self.facts,
            rules,
            base_dir,
            name_prefix: name_prefix.to_vec(),
            now: unix_now(),
        };
        let mut out = Vec::with_capacity(entries.len() * 80);
        for e in &entries {
            lines.push(e, &mut out);
        }
        Ok(out)
    }

    /// A directory of an S3 root, listed page by page while the data connection sends
    /// what is formatted: memory stays bounded however many objects there are.
    pub(super) fn streamed_listing(
        &self,
        store: Arc<crate::vfs::s3::ObjectStore>,
        dir: VPath,
        format: ListFormat,
    ) -> Job {
        let lines = Lines {
            format,
            facts: self.facts,
            rules: self.login.as_ref().map(|l| l.grant.rules.clone()),
            base_dir: dir.clone(),
            name_prefix: Vec::new(),
            now: unix_now(),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            const CHUNK: usize = 64 << 10;
            let mut entries = match store.entries(&dir).await {
                Ok(e) => e,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let mut out = Vec::with_capacity(CHUNK + 512);
            loop {
                match entries.next().await {
                    Ok(Some(e)) => lines.push(&e, &mut out),
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
                if out.len() >= CHUNK {
                    let full = std::mem::replace(&mut out, Vec::with_capacity(CHUNK + 512));
                    if tx.send(Ok(full)).await.is_err() {
                        return; // the transfer ended
                    }
                }
            }
            let _ = tx.send(Ok(out)).await;
        });
        Job::Listing(Listing::Pieces(rx))
    }

    pub(super) fn need_data(&self) -> Result<(), Reply> {
        if self.data.is_none() {
            return Err(replies::NO_DATA_CONNECTION.reply());
        }
        Ok(())
    }

    pub(super) async fn list_command(
        &mut self,
        args: ListArgs,
        format: ListFormat,
    ) -> Result<Option<Reply>, Reply> {
        let (jail, rules) = self.access()?;
        let (jail, rules) = (&jail, &*rules);
        self.rest = 0;
        let arg = args.path.as_deref().unwrap_or(b"");
        let target = self.resolve(arg, Op::Other)?;
        let target = rules
            .authorize(target, |p| p.list)
            .map_err(|e| e.reply(Op::Other))?
            .path()
            .clone();
        self.need_data()?;
        // The directory part the client typed, kept on NLST names of a pattern match.
        let prefix = match arg.iter().rposition(|b| *b == b'/') {
            Some(i) => arg[..=i].to_vec(),
            None => Vec::new(),
        };
        if let Some(store) = jail.object()
            && jail.stat(&target).await.is_ok_and(|e| e.kind == Kind::Dir)
        {
            let job = self.streamed_listing(store.clone(), target.clone(), format);
            let opening = replies::LISTING_FOLLOWS.reply();
            return self
                .start(
                    job,
                    opening,
                    Direction::Listing,
                    target,
                    replies::LISTING_SENT.reply(),
                    None,
                )
                .await;
        }
        let body = match self.listing(jail, &target, format, &prefix).await {
            Ok(b) => b,
            Err(Error::NotADirectory) if format == ListFormat::Mlsd => {
                return Err(replies::MLSD_NOT_A_DIRECTORY.reply());
            }
            Err(e) => return Err(e.reply(Op::Other)),
        };
        let opening = replies::LISTING_FOLLOWS.reply();
        self.start(
            Job::Listing(Listing::Whole(body)),
            opening,
            Direction::Listing,
            target,
            replies::LISTING_SENT.reply(),
            None,
        )
        .await
    }
}
