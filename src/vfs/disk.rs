//! The local backend: every file operation of a session, beneath one root directory.
//!
//! Built on cap-std, whose `Dir` resolves every path beneath itself with kernel help
//! (`openat2` + `RESOLVE_BENEATH`, or a checked component walk where the kernel lacks it):
//! a symlink pointing outside fails instead of being followed. Blocking filesystem calls
//! run on tokio's blocking pool; the one exception is the stat(2) with which [`Roots`]
//! checks, at each login, that a shared root is still the directory the path names.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use cap_fs_ext::{DirExt, SystemTimeSpec};
use cap_std::ambient_authority;
use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt, Permissions, PermissionsExt};
use wharf_proto::listing::{Entry, Kind};

use super::VPath;
use crate::error::Error;

/// How STOR-like commands open their target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Create or truncate (STOR).
    Truncate,
    /// Create only; fail with `Exists` if the name is taken (drop box, STOU).
    CreateNew,
    /// Create or append (APPE).
    Append,
    /// Create or open without truncating, then write from this offset (REST + STOR).
    At(u64),
}

/// Modes and owner given to what uploads create.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ownership {
    pub file_mode: Option<u32>,
    pub dir_mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Ownership {
    pub fn from_config(c: &crate::config::Config) -> Ownership {
        Ownership {
            file_mode: c.upload_mode,
            dir_mode: c.dir_mode,
            uid: c.upload_owner.as_deref().and_then(Ownership::uid_of),
            gid: c.upload_group.as_deref().and_then(Ownership::gid_of),
        }
    }

    /// A user name (or a number) to a uid.
    pub fn uid_of(name: &str) -> Option<u32> {
        crate::config::uid_of(name)
    }

    /// A group name (or a number) to a gid.
    pub fn gid_of(name: &str) -> Option<u32> {
        crate::config::gid_of(name)
    }

    fn apply(&self, f: &std::fs::File, dir: bool) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let mode = if dir { self.dir_mode } else { self.file_mode };
        if let Some(m) = mode {
            f.set_permissions(std::fs::Permissions::from_mode(m))?;
        }
        if self.uid.is_some() || self.gid.is_some() {
            std::os::unix::fs::fchown(f, self.uid, self.gid)?;
        }
        Ok(())
    }
}

/// Clears the `O_NONBLOCK` a transfer's file was opened with (to refuse FIFOs safely).
fn blocking_mode(f: &std::fs::File) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(f, FcntlArg::F_GETFL)?);
    fcntl(f, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
    Ok(())
}

/// The kernel has openat2(2)'s RESOLVE_CACHED (Linux 5.12); cleared at the first EINVAL.
static RESOLVE_CACHED_WORKS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(true);

/// `open_read` without a trip to the blocking pool, when the kernel can open the file from
/// its caches alone: openat2 with RESOLVE_CACHED fails with EAGAIN rather than read the
/// disk, and fstat and lseek of an open file never do. RESOLVE_BENEATH keeps the lookup
/// inside the root (absolute or escaping symlinks fail it). `None` for anything but an
/// open regular file: the blocking path then decides, with its errors.
fn open_cached(dir: &Dir, path: &VPath, offset: u64) -> Option<(std::fs::File, u64)> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
    use std::sync::atomic::Ordering;
    if !RESOLVE_CACHED_WORKS.load(Ordering::Relaxed) {
        return None;
    }
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::from_bits_retain(nix::libc::RESOLVE_CACHED),
        );
    let fd = match openat2(std::os::fd::AsFd::as_fd(dir), path.relative(), how) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {
            RESOLVE_CACHED_WORKS.store(false, Ordering::Relaxed);
            return None;
        }
        Err(_) => return None,
    };
    let mut f = std::fs::File::from(fd);
    let meta = f.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    blocking_mode(&f).ok()?;
    if offset > 0 {
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset)).ok()?;
    }
    Some((f, meta.len()))
}

/// A root directory and the only door to it.
#[derive(Debug, Clone)]
pub struct Disk {
    dir: Arc<Dir>,
    /// The root on disk, only for telling hooks where a file is.
    root: Arc<std::path::PathBuf>,
    owner: Ownership,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|_| Err(Error::Io(io::Error::other("blocking task failed"))))
}

/// The names in a directory but `.` and `..`, as getdents(2) returns them (a few large
/// reads, no allocation but the name's).
fn entry_names(sub: &Dir) -> Result<Vec<std::ffi::CString>, Error> {
    use nix::fcntl::OFlag;
    // Opened anew: the jail's handle may be O_PATH, which getdents refuses.
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut raw = nix::dir::Dir::openat(
        std::os::fd::AsFd::as_fd(sub),
        c".",
        flags,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(io::Error::from)?;
    let mut names = Vec::new();
    for item in raw.iter() {
        let item = item.map_err(io::Error::from)?;
        let name = item.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// An [`Entry`] from fstatat(2)'s answer.
fn stat_entry(name: Vec<u8>, st: &nix::sys::stat::FileStat) -> Entry {
    use nix::libc::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
    let kind = match st.st_mode & S_IFMT {
        S_IFDIR => Kind::Dir,
        S_IFREG => Kind::File,
        S_IFLNK => Kind::Symlink,
        _ => Kind::Other,
    };
    Entry {
        name,
        kind,
        size: st.st_size as u64,
        mtime: st.st_mtime,
        mode: st.st_mode & 0o7777,
        nlink: st.st_nlink,
        unique: (st.st_dev, st.st_ino),
    }
}

/// Directories with at least this many entries are described by two threads.
const PARALLEL_LIST: usize = 2048;

fn entry(name: Vec<u8>, m: &cap_std::fs::Metadata) -> Entry {
    let kind = if m.is_dir() {
        Kind::Dir
    } else if m.is_file() {
        Kind::File
    } else if m.file_type().is_symlink() {
        Kind::Symlink
    } else {
        Kind::Other
    };
    Entry {
        name,
        kind,
        size: m.len(),
        mtime: m.mtime(),
        mode: m.mode() & 0o7777,
        nlink: m.nlink(),
        unique: (m.dev(), m.ino()),
    }
}

/// The jail roots open now, shared by every session beneath them: one descriptor per
/// root however many sessions use it (10,000 sessions must not need 10,000 more), and no
/// open or path canonicalisation per login.
#[derive(Debug, Default)]
pub struct Roots {
    open: std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, SharedRoot>>,
}

#[derive(Debug)]
struct SharedRoot {
    dir: std::sync::Weak<Dir>,
    canonical: Arc<std::path::PathBuf>,
    /// Device and inode, to notice a root moved away or replaced since.
    id: (u64, u64),
}

impl Roots {
    /// A jail on `root` (created if missing), sharing its descriptor with the sessions
    /// already there as long as the path still names the same directory. The usual case
    /// costs one stat(2) of the root; a root not open yet is made and opened on the
    /// blocking pool. The lock guards the map only, never IO.
    pub async fn open(&self, root: &Path) -> io::Result<Disk> {
        use std::os::unix::fs::MetadataExt as _;
        let now = std::fs::metadata(root).ok().map(|m| (m.dev(), m.ino()));
        if let Some(jail) = self.shared(root, now) {
            return Ok(jail);
        }
        let path = root.to_path_buf();
        let (jail, id) = tokio::task::spawn_blocking(move || {
            let jail = Disk::open(&path)?;
            let meta = jail.dir.dir_metadata()?;
            Ok::<_, io::Error>((jail, (meta.dev(), meta.ino())))
        })
        .await
        .map_err(io::Error::other)??;
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, r| r.dir.strong_count() > 0);
        open.insert(
            root.to_path_buf(),
            SharedRoot {
                dir: Arc::downgrade(&jail.dir),
                canonical: jail.root.clone(),
                id,
            },
        );
        Ok(jail)
    }

    /// The open root at `root`, if it is still the directory with identity `now`.
    fn shared(&self, root: &Path, now: Option<(u64, u64)>) -> Option<Disk> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let shared = open.get(root).filter(|r| Some(r.id) == now)?;
        Some(Disk {
            dir: shared.dir.upgrade()?,
            root: shared.canonical.clone(),
            owner: Ownership::default(),
        })
    }
}

impl Disk {
    /// Opens `root` (which must exist: roots are checked at start, never created).
    pub fn open(root: &Path) -> io::Result<Disk> {
        let dir = Dir::open_ambient_dir(root, ambient_authority())?;
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        Ok(Disk {
            dir: Arc::new(dir),
            root: Arc::new(root),
            owner: Ownership::default(),
        })
    }

    /// Gives created files and directories these modes and owner.
    pub fn with_ownership(mut self, owner: Ownership) -> Disk {
        self.owner = owner;
        self
    }

    /// Where `path` is on the server's disk: for upload hooks, never for file access.
    pub fn host_path(&self, path: &VPath) -> std::path::PathBuf {
        self.root.join(path.relative())
    }

    /// Describes one object, following symlinks that stay inside the jail.
    pub async fn stat(&self, path: &VPath) -> Result<Entry, Error> {
        let dir = self.dir.clone();
        let path = path.clone();
        blocking(move || {
            let m = dir.metadata(path.relative())?;
            let name = path.file_name().unwrap_or(b"/").to_vec();
            Ok(entry(name, &m))
        })
        .await
    }

    /// Lists a directory. Symlinks are followed when they stay inside the jail; ones that
    /// dangle or point outside are shown as links and reveal nothing of their target.
    pub async fn list(&self, path: &VPath) -> Result<Vec<Entry>, Error> {
        let dir = self.dir.clone();
        let path = path.clone();
        blocking(move || {
            use std::os::unix::ffi::OsStrExt;
            let sub = dir.open_dir(path.relative())?;
            let names = entry_names(&sub)?;
            // Each name is one component of a directory inside the jail: fstatat beside it
            // goes nowhere else. A symlink is followed only by the jail (cap-std).
            let describe = |names: &[std::ffi::CString]| -> Vec<Entry> {
                use nix::fcntl::AtFlags;
                names
                    .iter()
                    .filter_map(|name| {
                        let st = nix::sys::stat::fstatat(
                            &sub,
                            name.as_c_str(),
                            AtFlags::AT_SYMLINK_NOFOLLOW,
                        )
                        .ok()?;
                        let bytes = name.as_bytes().to_vec();
                        if st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFLNK {
                            let target =
                                sub.metadata(Path::new(std::ffi::OsStr::from_bytes(&bytes)));
                            return Some(match target {
                                Ok(m) => entry(bytes, &m),
                                Err(_) => stat_entry(bytes, &st),
                            });
                        }
                        Some(stat_entry(bytes, &st))
                    })
                    .collect()
            };
            // The stat calls are most of a big listing's time: two threads share them, in
            // the order the directory returned its entries (near each other on disk and in
            // the inode cache); the names are sorted after.
            let mut out = if names.len() < PARALLEL_LIST {
                describe(&names)
            } else {
                let (first, second) = names.split_at(names.len() / 2);
                std::thread::scope(|s| {
                    let later = s.spawn(|| describe(second));
                    let mut out = describe(first);
                    match later.join() {
                        Ok(rest) => out.extend(rest),
                        Err(panic) => std::panic::resume_unwind(panic),
                    }
                    out
                })
            };
            out.sort_unstable_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .await
    }

    /// Opens a file for reading, positioned at `offset`; returns it with its length.
    pub async fn open_read(
        &self,
        path: &VPath,
        offset: u64,
    ) -> Result<(std::fs::File, u64), Error> {
        if let Some(opened) = open_cached(&self.dir, path, offset) {
            return Ok(opened);
        }
        let dir = self.dir.clone();
        let path = path.clone();
        blocking(move || {
            use std::io::{Seek, SeekFrom};
            // Non-blocking, so that opening a FIFO cannot hang a pool thread; it is
            // refused below anyway, like devices and sockets.
            let f = dir.open_with(
                path.relative(),
                OpenOptions::new()
                    .read(true)
                    .custom_flags(nix::libc::O_NONBLOCK),
            )?;
            let meta = f.metadata()?;
            if meta.is_dir() {
                return Err(Error::IsADirectory);
            }
            if !meta.is_file() {
                return Err(Error::NotRegular);
            }
            let mut f = f.into_std();
            blocking_mode(&f)?;
            if offset > 0 {
                f.seek(SeekFrom::Start(offset))?;
            }
            Ok((f, meta.len()))
        })
        .await
    }

    /// Opens a file for writing as `mode` says.
    pub async fn open_write(&self, path: &VPath, mode: WriteMode) -> Result<std::fs::File, Error> {
        let dir = self.dir.clone();
        let path = path.clone();
        let owner = self.owner;
        blocking(move || {
            use std::io::{Seek, SeekFrom};
            if path.is_root() {
                return Err(Error::IsADirectory);
            }
            if let WriteMode::At(offset) = mode {
                // A resume goes on from the end of what is there, never past it: a REST
                // far beyond would only make a huge sparse file.
                let have = match dir.metadata(path.relative()) {
                    Ok(m) => m.len(),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
                    Err(e) => return Err(e.into()),
                };
                if offset > have {
                    return Err(Error::ResumeAt(have));
                }
            }
            let mut opts = OpenOptions::new();
            // Non-blocking open: a FIFO without a reader fails at once instead of holding
            // a pool thread; anything but a regular file is refused below.
            opts.write(true).custom_flags(nix::libc::O_NONBLOCK);
            match mode {
                WriteMode::Truncate => opts.create(true).truncate(true),
                WriteMode::CreateNew => opts.create_new(true),
                WriteMode::Append => opts.create(true).append(true),
                WriteMode::At(_) => opts.create(true),
            };
            let f = dir.open_with(path.relative(), &opts)?;
            let mut f = f.into_std();
            let meta = f.metadata()?;
            use std::os::unix::fs::PermissionsExt as _;
            if !meta.is_file() {
                return Err(Error::NotRegular);
            }
            blocking_mode(&f)?;
            // Writing as root keeps setuid and setgid bits (the kernel clears them only
            // for writers without CAP_FSETID): new content never inherits them.
            if meta.permissions().mode() & 0o6000 != 0 {
                f.set_permissions(std::fs::Permissions::from_mode(
                    meta.permissions().mode() & 0o1777,
                ))?;
            }
            owner.apply(&f, false)?;
            if let WriteMode::At(offset) = mode {
                f.set_len(offset)?;
                f.seek(SeekFrom::Start(offset))?;
            }
            Ok(f)
        })
        .await
    }

    /// Makes a directory and any missing parents; `Exists` if the directory is already there.
    pub async fn mkdir(&self, path: &VPath) -> Result<(), Error> {
        let dir = self.dir.clone();
        let path = path.clone();
        let owner = self.owner;
        blocking(move || {
            if dir.symlink_metadata(path.relative()).is_ok() {
                return Err(Error::Exists);
            }
            dir.create_dir_all(path.relative())?;
            if owner != Ownership::default() {
                let made = dir.open_with(path.relative(), OpenOptions::new().read(true))?;
                owner.apply(&made.into_std(), true)?;
            }
            Ok(())
        })
        .await
    }

    pub async fn rmdir(&self, path: &VPath) -> Result<(), Error> {
        if path.is_root() {
            return Err(Error::Access);
        }
        let dir = self.dir.clone();
        let path = path.clone();
        blocking(move || Ok(dir.remove_dir(path.relative())?)).await
    }

    pub async fn remove_file(&self, path: &VPath) -> Result<(), Error> {
        let dir = self.dir.clone();
        let path = path.clone();
        blocking(move || {
            if dir.symlink_metadata(path.relative())?.is_dir() {
                return Err(Error::IsADirectory);
            }
            Ok(dir.remove_file(path.relative())?)
        })
        .await
    }

    /// Renames within the jail; an existing file at `to` is replaced.
    pub async fn rename(&self, from: &VPath, to: &VPath) -> Result<(), Error> {
        if from.is_root() || to.is_root() {
            return Err(Error::Access);
        }
        let dir = self.dir.clone();
        let (from, to) = (from.clone(), to.clone());
        blocking(move || Ok(dir.rename(from.relative(), &dir, to.relative())?)).await
    }

    /// Gives the file at `from` the name `to` too, failing with `Exists` if `to` is taken:
    /// the no-overwrite commit of an atomic upload.
    pub async fn link(&self, from: &VPath, to: &VPath) -> Result<(), Error> {
        let dir = self.dir.clone();
        let (from, to) = (from.clone(), to.clone());
        blocking(move || Ok(dir.hard_link(from.relative(), &dir, to.relative())?)).await
    }

    pub async fn chmod(&self, path: &VPath, mode: u32) -> Result<(), Error> {
        let dir = self.dir.clone();
        let path = path.clone();
        blocking(move || {
            // wharf may run as root: a client must never make a setuid or setgid file.
            // The sticky bit means something only on directories.
            let allowed = if dir.metadata(path.relative())?.is_dir() {
                0o1777
            } else {
                0o777
            };
            if mode & !allowed != 0 {
                return Err(Error::ModeNotAllowed);
            }
            Ok(dir.set_permissions(path.relative(), Permissions::from_mode(mode))?)
        })
        .await
    }

    /// Cuts a file back to `len` bytes (an in-place upload stopped by its quota).
    pub async fn truncate(&self, path: &VPath, len: u64) -> Result<(), Error> {
        let dir = self.dir.clone();
        let path = path.clone();
        blocking(move || {
            let mut opts = cap_std::fs::OpenOptions::new();
            opts.write(true);
            let f = dir.open_with(path.relative(), &opts)?;
            Ok(f.set_len(len)?)
        })
        .await
    }

    pub async fn set_mtime(&self, path: &VPath, mtime: SystemTime) -> Result<(), Error> {
        let dir = self.dir.clone();
        let path = path.clone();
        blocking(move || {
            Ok(dir.set_times(
                path.relative(),
                None,
                Some(SystemTimeSpec::Absolute(
                    cap_std::time::SystemTime::from_std(mtime),
                )),
            )?)
        })
        .await
    }

    /// Whether `path` exists (without following a final symlink).
    pub async fn exists(&self, path: &VPath) -> Result<bool, Error> {
        let dir = self.dir.clone();
        let path = path.clone();
        blocking(move || match dir.symlink_metadata(path.relative()) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Disk, tempfile::TempDir) {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"top secret").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("sub")).unwrap();
        std::fs::write(root.path().join("sub/inside"), b"ok").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("leak"))
            .unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/passwd", root.path().join("rel"))
            .unwrap();
        std::os::unix::fs::symlink("sub/inside", root.path().join("good")).unwrap();
        let jail = Disk::open(root.path()).unwrap();
        (root, jail, outside)
    }

    fn v(s: &str) -> VPath {
        VPath::root().resolve(s.as_bytes()).unwrap()
    }

    #[tokio::test]
    async fn symlinks_out_of_the_root_fail() {
        let (_root, jail, outside) = setup();
        for p in ["/leak", "/out/secret", "/rel"] {
            assert!(jail.open_read(&v(p), 0).await.is_err(), "{p}");
            assert!(jail.stat(&v(p)).await.is_err(), "{p}");
        }
        assert!(jail.list(&v("/out")).await.is_err());
        assert!(
            jail.open_write(&v("/out/new"), WriteMode::Truncate)
                .await
                .is_err()
        );
        assert!(jail.mkdir(&v("/out/d")).await.is_err());
        assert!(
            jail.rename(&v("/sub/inside"), &v("/out/moved"))
                .await
                .is_err()
        );
        assert!(!outside.path().join("new").exists());
        assert!(!outside.path().join("d").exists());
        assert!(!outside.path().join("moved").exists());
        // A link that stays inside works.
        assert!(jail.open_read(&v("/good"), 0).await.is_ok());
    }

    #[tokio::test]
    async fn listing_hides_outside_targets() {
        let (_root, jail, _outside) = setup();
        let list = jail.list(&VPath::root()).await.unwrap();
        let find = |n: &str| {
            list.iter()
                .find(|e| e.name == n.as_bytes())
                .unwrap()
                .clone()
        };
        assert_eq!(find("leak").kind, Kind::Symlink);
        assert_eq!(find("good").kind, Kind::File);
        assert_eq!(find("good").size, 2);
        assert_eq!(find("sub").kind, Kind::Dir);
    }

    /// The cached open (no blocking pool) takes only what the jail's own open would, and
    /// nothing that escapes: escaping links, FIFOs and directories go to the slow path.
    #[test]
    fn a_cached_open_stays_inside_and_takes_only_files() {
        let (root, jail, _outside) = setup();
        nix::unistd::mkfifo(&root.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Warm the dentry cache as a first listing or open would.
        for p in [
            "/sub/inside",
            "/good",
            "/leak",
            "/rel",
            "/out/secret",
            "/fifo",
            "/sub",
        ] {
            let _ = std::fs::symlink_metadata(root.path().join(&p[1..]));
        }
        let (mut f, len) = open_cached(&jail.dir, &v("/sub/inside"), 1).expect("cached");
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut f, &mut rest).unwrap();
        assert_eq!((len, rest.as_str()), (2, "k"));
        // A link that stays inside may take either path (the kernel may want its body read).
        for p in ["/leak", "/rel", "/out/secret", "/fifo", "/sub", "/missing"] {
            assert!(open_cached(&jail.dir, &v(p), 0).is_none(), "{p}");
        }
    }

    #[tokio::test]
    async fn write_modes() {
        use std::io::{Read, Write};
        let (root, jail, _o) = setup();
        let p = v("/f");
        jail.open_write(&p, WriteMode::Truncate)
            .await
            .unwrap()
            .write_all(b"hello")
            .unwrap();
        assert!(matches!(
            jail.open_write(&p, WriteMode::CreateNew).await,
            Err(Error::Exists)
        ));
        jail.open_write(&p, WriteMode::Append)
            .await
            .unwrap()
            .write_all(b"!!")
            .unwrap();
        jail.open_write(&p, WriteMode::At(2))
            .await
            .unwrap()
            .write_all(b"LP")
            .unwrap();
        assert_eq!(std::fs::read(root.path().join("f")).unwrap(), b"heLP");
        // Past the end is refused, naming where a resume can go on.
        assert!(matches!(
            jail.open_write(&p, WriteMode::At(1 << 40)).await,
            Err(Error::ResumeAt(4))
        ));
        assert!(matches!(
            jail.open_write(&v("/none"), WriteMode::At(7)).await,
            Err(Error::ResumeAt(0))
        ));
        assert!(!root.path().join("none").exists());
        let mut s = String::new();
        let (mut f, len) = jail.open_read(&p, 1).await.unwrap();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "eLP");
        assert_eq!(len, 4, "the whole file's length, whatever the offset");
        assert!(matches!(
            jail.open_read(&v("/sub"), 0).await,
            Err(Error::IsADirectory)
        ));
    }

    #[tokio::test]
    async fn directories() {
        let (root, jail, _o) = setup();
        jail.mkdir(&v("/a/b/c")).await.unwrap();
        assert!(root.path().join("a/b/c").is_dir());
        assert!(matches!(jail.mkdir(&v("/a/b")).await, Err(Error::Exists)));
        assert!(matches!(jail.rmdir(&v("/a")).await, Err(Error::NotEmpty)));
        assert!(matches!(
            jail.rmdir(&VPath::root()).await,
            Err(Error::Access)
        ));
        assert!(matches!(
            jail.remove_file(&v("/sub")).await,
            Err(Error::IsADirectory)
        ));
        jail.rmdir(&v("/a/b/c")).await.unwrap();
        assert!(!jail.exists(&v("/a/b/c")).await.unwrap());
    }
}
