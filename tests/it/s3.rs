//! S3 roots against a real S3 server: Garage, started per test on loopback ports, single
//! node, with its default key and bucket (`.ci/install-garage` caches the binary).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wharf::config::{StorageConfig, StorageKind};

use crate::harness::TestServer;

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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Garage server; killed when dropped.
pub struct Garage {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
    binary: PathBuf,
}

impl Garage {
    /// Starts Garage, or `None` (outside CI) when it is not installed.
    pub fn start() -> Option<Garage> {
        let binary = binary()?;
        let dir = tempfile::tempdir().unwrap();
        let (rpc, port) = (free_port(), free_port());
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("garage.toml"),
            format!(
                "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\n\
                 replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{SECRET}\"\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{port}\"\n"
            ),
        )
        .unwrap();
        let mut g = Garage {
            child: None,
            dir,
            port,
            binary,
        };
        g.resume();
        Some(g)
    }

    /// (Re)starts the server on the same data and port; returns once it answers.
    pub fn resume(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("garage.log")).unwrap();
        let child = Command::new(&self.binary)
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
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "garage did not start: {}",
                std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGKILL), as a crashed or unreachable S3 would be.
    pub fn halt(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A `[[storage]]` block for this server under `prefix`.
    pub fn storage(&self, name: &str, prefix: &str) -> StorageConfig {
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

    /// A store on the same location, to look at the bucket from outside wharf.
    pub fn store(&self, prefix: &str) -> std::sync::Arc<wharf::vfs::s3::ObjectStore> {
        let c = self.storage("look", prefix);
        let secret = wharf::vfs::s3::Secret::load(&c).unwrap();
        std::sync::Arc::new(wharf::vfs::s3::ObjectStore::new(&c, &secret).unwrap())
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A wharf server whose every root (users and anonymous) is `prefix` in Garage's bucket.
pub fn server(g: &Garage, prefix: &str, f: impl FnOnce(&mut wharf::Config)) -> TestServer {
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
pub fn visible(g: &Garage, prefix: &str, path: &str) -> bool {
    let store = g.store(prefix);
    let p = wharf::vfs::VPath::root().resolve(path.as_bytes()).unwrap();
    block(async move { store.exists(&p).await.unwrap() })
}
