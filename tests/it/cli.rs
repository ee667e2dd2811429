//! The `wharf` binary itself: `serve` on the embedded default, `check-config`,
//! `hash-password`.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::processes::{WHARF, Wharf, serve};

/// `wharf check-config FILE`: whether it passed, and what it said on stderr.
fn check_config(file: &std::path::Path) -> (bool, String) {
    let out = Command::new(WHARF)
        .arg("check-config")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_accepts_the_example_and_explains() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/wharf.example.toml");
    let text = std::fs::read_to_string(example).unwrap();
    // As shipped, its roots and credentials are not on this machine: check-config says so
    // with file:line, as serve would refuse to start.
    let out = Command::new(WHARF)
        .args(["check-config", example])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if !std::path::Path::new("/srv/ftp/alice").is_dir() {
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains("wharf.example.toml:9:1: root /srv/ftp does not exist"),
            "{err}"
        );
    }
    // With what it names in place, it passes and explains itself.
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("srv");
    std::fs::create_dir_all(srv.join("alice")).unwrap();
    let creds = dir.path().join("s3-credentials");
    std::fs::write(&creds, "access_key_id = \"k\"\nsecret_access_key = \"s\"\n").unwrap();
    let file = dir.path().join("wharf.toml");
    let local = text
        .replace("/srv/ftp", &srv.display().to_string())
        .replace("/etc/wharf/s3-credentials", &creds.display().to_string());
    std::fs::write(&file, local).unwrap();
    let out = Command::new(WHARF)
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("user alice"), "{text}");
    assert!(text.contains("passive ports: 50000-50999"), "{text}");
}

/// `shipped` (a config file of dist/) with each of `paths` made in a temporary directory and
/// pointed there, and `run_as` given to root: check-config's stdout, asserting it passed.
fn check_shipped(shipped: &str, paths: &[&str]) -> String {
    let text = std::fs::read_to_string(shipped).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut local = text.replace("run_as = \"wharf\"", "run_as = \"root\"");
    for path in paths {
        let here = dir.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(&here).unwrap();
        local = local.replace(path, &here.display().to_string());
    }
    let file = dir.path().join("wharf.toml");
    std::fs::write(&file, local).unwrap();
    let out = Command::new(WHARF)
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{shipped}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The Debian package's /etc/wharf/wharf.toml and the container image's pass check-config
/// once what the package's postinst (or the image) makes is there; root stands in for the
/// `wharf` user. dist/test-release and dist/container/test run them for real.
#[test]
fn the_packaged_and_container_configs_pass_check_config() {
    let dist = concat!(env!("CARGO_MANIFEST_DIR"), "/dist");
    let deb = format!("{dist}/deb/wharf.toml");
    assert!(
        std::fs::read_to_string(&deb)
            .unwrap()
            .contains("run_as = \"wharf\"")
    );
    let text = check_shipped(
        &deb,
        &["/srv/ftp", "/var/lib/wharf", "/var/log/wharf", "/run/wharf"],
    );
    assert!(text.contains("passive ports: 50000-50099"), "{text}");
    let text = check_shipped(
        &format!("{dist}/container/wharf.toml"),
        &["/srv/ftp", "/var/lib/wharf"],
    );
    assert!(text.contains("passive ports: 30000-30009"), "{text}");
    assert!(text.contains("listen: [::]:2121"), "{text}");
}

#[test]
fn a_missing_root_in_a_file_refuses_the_start_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wharf.toml");
    let typo = dir.path().join("scnas");
    std::fs::write(&file, format!("root = \"{}\"\n", typo.display())).unwrap();
    let out = Command::new(WHARF)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("root {} does not exist", typo.display())),
        "{err}"
    );
    assert!(!typo.exists(), "nothing was created");
    let (ok, err) = check_config(&file);
    assert!(!ok);
    assert!(err.contains(":1:1: root "), "file:line: {err}");
}

#[test]
fn check_config_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "root = \"/srv\"\nanonymus = \"read\"\n").unwrap();
    let (ok, err) = check_config(&file);
    assert!(!ok);
    assert!(err.contains("bad.toml:2:"), "{err}");
    assert!(err.contains("did you mean `anonymous`?"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let out = Command::new(WHARF)
        .args(["check-config", "/nonexistent/wharf.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn hash_password_reads_stdin() {
    let mut child = Command::new(WHARF)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("s3cret"));
}

#[test]
fn serve_on_the_embedded_default_creates_ftp_and_says_how_to_connect() {
    let dir = tempfile::tempdir().unwrap();
    // Port 0 keeps tests parallel; everything else is the embedded default.
    let wharf = Wharf::start(
        serve()
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(dir.path()),
        &dir.path().join("stderr.log"),
    );
    let line = wharf.line.clone();
    drop(wharf);
    assert!(line.contains("curl ftp://127.0.0.1:"), "{line}");
    assert!(line.contains("anonymous: read"), "{line}");
    assert!(dir.path().join("ftp").is_dir());
}

#[test]
fn serve_check_config_and_the_admin_commands_read_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("served");
    std::fs::create_dir(&root).unwrap();
    let sock = dir.path().join("admin.sock");
    let file = dir.path().join("wharf.toml");
    std::fs::write(
        &file,
        format!(
            "listen = [\"127.0.0.1:0\"]\nroot = \"{}\"\nadmin_socket = \"{}\"\n",
            root.display(),
            sock.display()
        ),
    )
    .unwrap();
    // WHARF_CONFIG stands in for the packaged /etc/wharf/wharf.toml: no --config anywhere.
    let run = |args: &[&str]| {
        Command::new(WHARF)
            .args(args)
            .env("WHARF_CONFIG", &file)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let mut wharf = Wharf::start(
        serve().env("WHARF_CONFIG", &file).current_dir(dir.path()),
        &dir.path().join("stderr.log"),
    );
    assert!(wharf.line.contains("served"), "{}", wharf.line);
    assert!(wharf.log().contains("wharf.toml"), "{}", wharf.log());
    let who = run(&["who"]);
    assert!(
        who.status.success(),
        "{}",
        String::from_utf8_lossy(&who.stderr)
    );
    let check = run(&["check-config"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(String::from_utf8_lossy(&check.stdout).contains("wharf.toml: ok"));
    assert!(
        wharf
            .stop_within(std::time::Duration::from_secs(10))
            .success()
    );
    // --no-config runs on the embedded default even when a file is there.
    let plain = Wharf::start(
        serve()
            .args(["--no-config", "--listen", "127.0.0.1:0"])
            .env("WHARF_CONFIG", &file)
            .current_dir(dir.path()),
        &dir.path().join("stderr2.log"),
    );
    assert!(!plain.line.contains("served"), "{}", plain.line);
    assert!(dir.path().join("ftp").is_dir());
}

/// The `try:` command of a start line, run as printed (FILE and a password filled in);
/// returns curl's output.
fn run_hint(line: &str, dir: &std::path::Path, password: &str) -> std::process::Output {
    let hint = line
        .split("try: ")
        .nth(1)
        .and_then(|t| t.split(';').next())
        .unwrap_or_else(|| panic!("no hint in {line}"))
        .trim()
        .to_string();
    assert!(hint.starts_with("curl "), "{hint}");
    std::fs::write(dir.join("hint.txt"), b"hello\n").unwrap();
    let mut args: Vec<String> = hint.split_whitespace().skip(1).map(String::from).collect();
    for a in &mut args {
        if a == "FILE" {
            *a = dir.join("hint.txt").display().to_string();
        }
    }
    if let Some(i) = args.iter().position(|a| a == "-u") {
        args[i + 1] = format!("{}:{password}", args[i + 1]);
    }
    Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(&args)
        .output()
        .unwrap()
}

#[test]
fn start_hints_work_in_every_mode() {
    if !crate::harness::have("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // (flags, what the line must say, password for -u)
    let modes: [(&[&str], &str, &str); 3] = [
        (&["--anonymous", "upload"], "curl -T FILE ftp://", ""),
        (&["--user", "alice:pw1"], "anonymous: off", "pw1"),
        (&["--tls", "auto", "--tls-required"], "--ssl-reqd -k", ""),
    ];
    for (i, (flags, says, password)) in modes.into_iter().enumerate() {
        let root = dir.path().join(format!("root{i}"));
        let wharf = Wharf::start(
            serve()
                .args(["--listen", "127.0.0.1:0", "--root"])
                .arg(&root)
                .args(flags)
                .env("STATE_DIRECTORY", &state),
            &dir.path().join(format!("log{i}")),
        );
        let line = wharf.line.clone();
        assert!(line.contains(says), "{flags:?}: {line}");
        let out = run_hint(&line, dir.path(), password);
        assert!(
            out.status.success(),
            "{flags:?}: the hint failed: {line}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        drop(wharf);
    }
    // The drop box's hint really stored the file.
    assert_eq!(
        std::fs::read(dir.path().join("root0/hint.txt")).unwrap(),
        b"hello\n"
    );
}

#[test]
fn version_names_the_commit() {
    let out = Command::new(WHARF).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // `wharf 0.1.0 (0123456789ab)`, or `(unknown)` outside a git checkout.
    assert!(
        text.starts_with("wharf ") && text.contains(" (") && text.trim_end().ends_with(')'),
        "{text}"
    );
}

#[test]
fn completions_and_the_man_page_come_from_the_command_table() {
    for (args, must) in [
        (&["completions", "bash"][..], "serve"),
        (&["completions", "zsh"], "check-config"),
        (&["completions", "fish"], "hash-password"),
        (&["man"], ".TH wharf 1"),
    ] {
        let out = Command::new(WHARF).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(must), "{args:?}: {text}");
    }
}

#[test]
fn the_log_starts_with_what_runs_and_refusals_say_what_who_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.log");
    let mut wharf = Wharf::start(
        serve()
            .args(["--listen", "127.0.0.1:0", "--root"])
            .arg(dir.path().join("ftp")),
        &log,
    );
    let mut c = crate::harness::Ctrl::connect(wharf.ftp());
    c.login("anonymous", "me@example.com");
    assert_eq!(c.cmd("DELE nosuch.txt").code, 550);
    // A control character in an argument cannot reach a log line raw (no forged lines,
    // no terminal escapes).
    assert_eq!(c.cmd("DELE a\x1b[31mb\rc").code, 550);
    // An idle session gets 421 at shutdown: the server speaking, not a failed command.
    assert!(wharf.stop().success());
    let text = wharf.log();
    let first = text.lines().next().unwrap_or_default();
    assert!(first.contains("wharf starting"), "{text}");
    for field in [
        "version=",
        "commit=",
        "listen=127.0.0.1:0",
        "anonymous=read",
        "tls=",
    ] {
        assert!(first.contains(field), "{field}: {first}");
    }
    let refusal = text
        .lines()
        .find(|l| l.contains("command error"))
        .unwrap_or_else(|| panic!("{text}"));
    for field in [
        "command=\"DELE\"",
        "path=nosuch.txt",
        "user=\"anonymous\"",
        "code=550",
        "client=",
    ] {
        assert!(refusal.contains(field), "{field}: {refusal}");
    }
    assert!(
        !text
            .lines()
            .any(|l| l.contains("command error") && l.contains("code=421")),
        "{text}"
    );
    assert!(text.contains("path=a?[31mb?c"), "{text}");
    assert!(!text.contains('\x1b') && !text.contains('\r'), "{text}");
}

/// The `wharf serve` lines of the README's recipes, as written.
fn readme_serve_recipes() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let recipes = readme
        .split("## Recipes")
        .nth(1)
        .and_then(|r| r.split("\n## ").next())
        .unwrap_or_default();
    recipes
        .lines()
        .map(|l| l.split(" #").next().unwrap().trim())
        .filter(|l| l.starts_with("wharf serve") || l.starts_with("sudo wharf serve"))
        .map(String::from)
        .collect()
}

#[test]
fn the_readme_serve_recipes_start_as_written() {
    let recipes = readme_serve_recipes();
    assert!(recipes.len() >= 2, "{recipes:?}");
    let root = nix::unistd::Uid::effective().is_root();
    for recipe in recipes {
        // As written, but run as root here instead of through sudo.
        let line = recipe.strip_prefix("sudo ").unwrap_or(&recipe);
        if recipe.starts_with("sudo ") && !root {
            continue;
        }
        let args = shell_words(line.strip_prefix("wharf ").unwrap());
        // Its port must be free here (21 or 2121); a machine that uses it skips the recipe.
        let port = args
            .windows(2)
            .find(|w| w[0] == "--listen")
            .and_then(|w| w[1].rsplit(':').next().map(String::from))
            .unwrap_or_else(|| "2121".into());
        if std::net::TcpListener::bind(format!("[::]:{port}")).is_err() {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(WHARF);
        cmd.args(&args)
            .current_dir(dir.path())
            .env("STATE_DIRECTORY", dir.path().join("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        // Checked free above, yet something else on the machine may take it meanwhile.
        let wharf = match Wharf::try_start(&mut cmd, &dir.path().join("log")) {
            Ok(w) => w,
            Err(e) if e.contains("in use") => continue,
            Err(e) => panic!("{recipe}: {e}"),
        };
        assert!(wharf.line.contains("try: curl"), "{recipe}: {}", wharf.line);
        drop(wharf);
        // The drop box's folder was made where the recipe says; leave the machine clean.
        if let Some(w) = args.windows(2).find(|w| w[0] == "--root") {
            let _ = std::fs::remove_dir(&w[1]);
        }
    }
    // One after the other: both listen on the default port.
    the_readme_users_recipe_runs_as_written();
}

/// The Users recipe: its TOML block and the commands of the `sh` block after it.
fn readme_users_recipe() -> (String, Vec<String>) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let users = readme.split("**Users**").nth(1).unwrap();
    let block = |lang: &str| {
        let start = users.find(&format!("```{lang}\n")).unwrap() + lang.len() + 4;
        users[start..].split("```").next().unwrap().to_string()
    };
    let commands = block("sh")
        .lines()
        .map(|l| l.split('#').next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    (block("toml"), commands)
}

/// Run by [`the_readme_serve_recipes_start_as_written`], which also takes port 2121.
fn the_readme_users_recipe_runs_as_written() {
    if std::net::TcpListener::bind("[::]:2121").is_err() {
        return; // the embedded default's port is in use on this machine
    }
    let (toml, commands) = readme_users_recipe();
    assert!(commands.len() >= 3, "{commands:?}");
    // The file the recipe puts in /etc/wharf, with its paths here and a real hash;
    // WHARF_CONFIG stands in for the default path, so the commands run as written.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("srv")).unwrap();
    let config = toml
        .replace("/srv/ftp", &dir.path().join("srv").display().to_string())
        .replace(
            "/run/wharf.sock",
            &dir.path().join("admin.sock").display().to_string(),
        )
        .replace("$argon2id$...", &wharf::auth::hash_password(b"secret"));
    let file = dir.path().join("wharf.toml");
    std::fs::write(&file, config).unwrap();
    let mut serving = None;
    for command in &commands {
        let args = shell_words(command.strip_prefix("wharf ").expect(command));
        let mut cmd = Command::new(WHARF);
        cmd.args(&args)
            .env("WHARF_CONFIG", &file)
            .current_dir(dir.path());
        if args[0] == "serve" {
            cmd.stdin(Stdio::null()).stdout(Stdio::piped());
            let wharf = Wharf::start(&mut cmd, &dir.path().join("log"));
            assert!(wharf.line.contains("-u alice"), "{}", wharf.line);
            serving = Some(wharf);
            continue;
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"secret\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        serving.is_some(),
        "the recipe starts the server: {commands:?}"
    );
}

/// Splits a recipe line as the shell would (single quotes only, which is all they use).
fn shell_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

#[test]
fn a_port_in_use_is_reported_as_itself() {
    let Ok(taken) = std::net::TcpListener::bind("[::]:0") else {
        return; // no IPv6 here
    };
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(WHARF)
        .args(["serve", "--listen", &format!("[::]:{port}"), "--root"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on [::]:{port}")),
        "{err}"
    );
    assert!(!err.contains("IPv6 unavailable"), "{err}");
}

#[test]
fn serve_rejects_bad_flags_without_panicking() {
    let out = Command::new(WHARF)
        .args(["serve", "--anonymous", "maybe"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    let out = Command::new(WHARF)
        .args(["serve", "--user", "nocolon", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("WHARF_PASSWORD_NOCOLON"));
}

#[test]
fn wharf_quota_shows_usage_through_the_admin_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("srv");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("held.bin"), vec![7u8; 4096]).unwrap();
    let hash = wharf::auth::hash_password(b"pw");
    std::fs::write(
        dir.path().join("wharf.toml"),
        format!(
            "root = \"{}\"\nadmin_listen = \"127.0.0.1:0\"\n\
             [[user]]\nname = \"judge\"\npassword = \"{hash}\"\nquota_bytes = 10000\nquota_files = 5\n\
             [[user]]\nname = \"free\"\npassword = \"{hash}\"\n",
            root.display()
        ),
    )
    .unwrap();
    let mut wharf = Wharf::start(
        serve()
            .args(["--listen", "127.0.0.1:0", "--config", "wharf.toml"])
            .env_remove("RUST_LOG")
            .current_dir(dir.path()),
        &dir.path().join("stderr.log"),
    );
    let admin = wharf.admin().to_string();
    let run = |args: &[&str]| {
        let out = Command::new(WHARF)
            .args(args)
            .args(["--admin", &admin])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Every login with a quota: judge, counted at first need; not `free`.
    let table = run(&["quota"]);
    let line = table.lines().find(|l| l.starts_with("judge")).unwrap();
    assert!(line.contains("4.0 KiB / 9.8 KiB"), "{table}");
    assert!(line.contains("1 / 5"), "{table}");
    assert!(!table.contains("free"), "{table}");
    // One user, with a quota or not, as JSON.
    let json: serde_json::Value = serde_json::from_str(&run(&["quota", "free", "--json"])).unwrap();
    assert_eq!(json[0]["user"], "free");
    assert_eq!(json[0]["bytes"], 4096);
    assert_eq!(json[0]["quota_bytes"], serde_json::Value::Null);
    wharf.stop();
}

#[test]
fn check_config_names_the_virtual_host_of_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.toml");
    std::fs::write(
        &file,
        format!(
            "root = \"{root}\"\n[[host]]\nname = \"ftp.a.example\"\nroot = \"{root}/missing\"\n",
            root = dir.path().display()
        ),
    )
    .unwrap();
    let (ok, err) = check_config(&file);
    assert!(!ok);
    assert!(err.contains("host `ftp.a.example`"), "{err}");
    assert!(err.contains("missing"), "{err}");
    std::fs::write(
        &file,
        format!(
            "root = \"{root}\"\n[[host]]\nname = \"A.example\"\n[[host]]\nname = \"b.example\"\naliases = [\"a.example\"]\n",
            root = dir.path().display()
        ),
    )
    .unwrap();
    let (ok, err) = check_config(&file);
    assert!(!ok);
    assert!(err.contains("host `a.example` is named twice"), "{err}");
}
