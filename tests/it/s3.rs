//! S3 roots against a real S3 server: Garage, started per test on loopback ports, single
//! node, with its default key and bucket (`.ci/install-garage` caches the binary). Garage
//! must be told its ports: they are picked where nothing else takes ports
//! ([`quiet_ports`]), and a start that finds one taken anyway is retried on others.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use wharf::config::{StorageConfig, StorageKind};

use crate::harness::{TestServer, quiet_ports, wait_for};
use crate::processes::listens_on;

const KEY: &str = "GK0123456789abcdef01234567";
const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const BUCKET: &str = "wharf";
/// The smallest part S3 takes: tests cross part boundaries with few bytes.
pub const PART: usize = 5 << 20;

/// Where the Garage binary is: `WHARF_GARAGE`, else the cache `.ci/install-garage` fills.
fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("WHARF_GARAGE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/wharf/garage-2.5.0/bin/garage"))
        })?;
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("garage is not installed (.ci/install-garage), and CI must run the S3 tests");
    }
    eprintln!("skipping: garage not installed (run .ci/install-garage)");
    None
}

/// A Garage server; killed when dropped.
pub struct Garage {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The S3 API's port on 127.0.0.1.
    pub port: u16,
    /// The port of Garage's own RPC, which it needs even alone.
    rpc: u16,
    binary: PathBuf,
}

/// How a launch went.
enum Started {
    Up,
    /// Someone else holds one of the ports: try others.
    PortTaken,
}

impl Garage {
    /// Starts Garage, or `None` (outside CI) when it is not installed.
    pub fn start() -> Option<Garage> {
        let binary = binary()?;
        let dir = tempfile::tempdir().unwrap();
        let mut g = Garage {
            child: None,
            dir,
            port: 0,
            rpc: 0,
            binary,
        };
        for _ in 0..5 {
            let ports = quiet_ports(2);
            (g.rpc, g.port) = (ports.low, ports.high);
            for state in ["meta", "data"] {
                let _ = std::fs::remove_dir_all(g.dir.path().join(state));
            }
            g.configure();
            match g.launch() {
                Started::Up => return Some(g),
                Started::PortTaken => g.halt(),
            }
        }
        panic!("garage found its ports taken five times: {}", g.log());
    }

    fn configure(&self) {
        let d = self.dir.path().display();
        let (rpc, port) = (self.rpc, self.port);
        std::fs::write(
            self.dir.path().join("garage.toml"),
            format!(
                "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\n\
                 replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{SECRET}\"\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{port}\"\n"
            ),
        )
        .unwrap();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }

    /// Runs the server on its configuration; it is up once it listens on both its ports
    /// itself (an answer on the port could be someone else's).
    fn launch(&mut self) -> Started {
        let log = std::fs::File::create(self.dir.path().join("garage.log")).unwrap();
        let mut child = Command::new(&self.binary)
            .arg("-c")
            .arg(self.dir.path().join("garage.toml"))
            .args(["server", "--single-node", "--default-bucket"])
            .env("GARAGE_DEFAULT_ACCESS_KEY", KEY)
            .env("GARAGE_DEFAULT_SECRET_KEY", SECRET)
            .env("GARAGE_DEFAULT_BUCKET", BUCKET)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start garage");
        let pid = child.id();
        let up = || listens_on(pid, self.port) && listens_on(pid, self.rpc);
        // A taken S3 port is only logged; a taken RPC port ends the process.
        let taken = || self.log().contains("Address already in use");
        let ended = |c: &mut Child| c.try_wait().ok().flatten().is_some();
        wait_for(Duration::from_secs(20), || {
            up() || taken() || ended(&mut child)
        });
        let (up, taken) = (up(), taken());
        self.child = Some(child);
        match (up, taken) {
            (true, _) => Started::Up,
            (false, true) => Started::PortTaken,
            (false, false) => panic!("garage did not start: {}", self.log()),
        }
    }

    /// (Re)starts the server on the same data and ports; returns once it answers.
    pub fn resume(&mut self) {
        match self.launch() {
            Started::Up => {}
            Started::PortTaken => panic!("garage's ports were taken meanwhile: {}", self.log()),
        }
    }

    /// Stops the server (SIGKILL), as a crashed or unreachable S3 would be.
    pub fn halt(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An S3 server a test runs (Garage, moto): what a `[[storage]]` block on it looks like.
pub trait S3Server {
    /// A `[[storage]]` block named `name` for this server under `prefix`.
    fn storage(&self, name: &str, prefix: &str) -> StorageConfig;

    /// A store on the same location, to look at the bucket from outside wharf.
    fn store(&self, prefix: &str) -> std::sync::Arc<wharf::vfs::s3::ObjectStore> {
        let c = self.storage("look", prefix);
        let secret = wharf::vfs::s3::Secret::load(&c).unwrap();
        std::sync::Arc::new(wharf::vfs::s3::ObjectStore::new(&c, &secret).unwrap())
    }
}

impl S3Server for Garage {
    fn storage(&self, name: &str, prefix: &str) -> StorageConfig {
        let creds = self.dir.path().join("credentials");
        std::fs::write(
            &creds,
            format!("access_key_id = {KEY}\nsecret_access_key = {SECRET}\n"),
        )
        .unwrap();
        StorageConfig {
            name: name.into(),
            kind: StorageKind::S3,
            bucket: Some(BUCKET.into()),
            prefix: Some(prefix.into()),
            endpoint: Some(format!("http://127.0.0.1:{}", self.port)),
            region: Some("garage".into()),
            path_style: true,
            credentials_file: Some(creds),
            part_size: PART,
            timeout: 5,
            retries: 2,
            ..StorageConfig::default()
        }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A wharf server whose every root (users and anonymous) is `prefix` in Garage's bucket.
pub fn server(g: &impl S3Server, prefix: &str, f: impl FnOnce(&mut wharf::Config)) -> TestServer {
    let storage = g.storage("bucket", prefix);
    TestServer::with(move |c| {
        c.storages.push(storage);
        c.root = "storage:bucket".into();
        f(c);
    })
}

/// Runs `f` on a current-thread runtime (the outside look at the bucket).
pub fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Whether `path` exists in the bucket, seen from outside wharf.
pub fn visible(g: &impl S3Server, prefix: &str, path: &str) -> bool {
    let store = g.store(prefix);
    let p = wharf::vfs::VPath::root().resolve(path.as_bytes()).unwrap();
    block(async move { store.exists(&p).await.unwrap() })
}

/// The bytes in the stored parts of `path`'s unfinished upload, seen from outside wharf.
pub fn pending(g: &impl S3Server, prefix: &str, path: &str) -> Option<u64> {
    let store = g.store(prefix);
    let p = wharf::vfs::VPath::root().resolve(path.as_bytes()).unwrap();
    block(async move { store.pending(&p).await.unwrap().map(|p| p.bytes) })
}

/// Waits until wharf has stored `bytes` of `path`'s running upload as parts: the upload is
/// under way in S3, not only in socket buffers.
#[track_caller]
pub fn await_parts(g: &impl S3Server, prefix: &str, path: &str, bytes: usize) {
    let stored = || pending(g, prefix, path).is_some_and(|b| b >= bytes as u64);
    assert!(
        wait_for(Duration::from_secs(20), stored).is_some(),
        "{path}: {:?} bytes in parts, not {bytes}",
        pending(g, prefix, path)
    );
}
