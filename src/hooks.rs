//! Upload hooks: after a file is stored, run a command (argv, no shell) and/or POST a JSON
//! event to a URL. Hooks run in the background with a concurrency limit and a timeout;
//! their failures are logged and never change the FTP reply.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Semaphore;

use crate::config::Config;

/// What a hook is told about an upload.
#[derive(Debug, Clone, Serialize)]
pub struct UploadEvent {
    pub event: &'static str,
    /// The path as the client sees it (inside its root).
    pub path: String,
    /// The file on the server's disk.
    pub file: String,
    pub user: String,
    pub client: String,
    pub size: u64,
}

/// The configured hooks.
#[derive(Debug)]
pub struct Hooks {
    command: Vec<String>,
    url: Option<String>,
    /// Built once with the hooks (reused across POSTs, so connections are too).
    http: Option<reqwest::Client>,
    slots: Arc<Semaphore>,
    timeout: Duration,
    tasks: crate::tasks::Tasks,
}

impl Hooks {
    pub fn new(config: &Config, tasks: crate::tasks::Tasks) -> Hooks {
        let timeout = Duration::from_secs(config.hook_timeout.max(1));
        let http = config.upload_hook_url.as_ref().and_then(|_| {
            crate::http::client()
                .timeout(timeout)
                .build()
                .inspect_err(|e| tracing::error!(error = %e, "upload hook URL: no HTTP client"))
                .ok()
        });
        Hooks {
            command: config.upload_hook.clone(),
            url: config.upload_hook_url.clone(),
            http,
            slots: Arc::new(Semaphore::new(config.hook_concurrency.max(1))),
            timeout,
            tasks,
        }
    }

    pub fn enabled(&self) -> bool {
        !self.command.is_empty() || self.url.is_some()
    }

    /// Starts the hooks for one stored file and returns at once.
    pub fn uploaded(&self, event: UploadEvent) {
        if !self.enabled() {
            return;
        }
        let command = self.command.clone();
        let post_to = self.url.clone().zip(self.http.clone());
        let slots = self.slots.clone();
        let timeout = self.timeout;
        self.tasks.spawn(async move {
            // Waiting for a slot is part of the hook's time, so a backlog cannot grow
            // without bound behind a stuck hook.
            let Ok(Ok(_permit)) = tokio::time::timeout(timeout, slots.acquire_owned()).await else {
                tracing::warn!(path = %event.path, "upload hook skipped: too many hooks running");
                return;
            };
            if !command.is_empty() {
                run_command(&command, &event, timeout).await;
            }
            if let Some((url, http)) = post_to {
                post(&http, &url, &event).await;
            }
        });
    }
}

async fn run_command(argv: &[String], ev: &UploadEvent, timeout: Duration) {
    let mut cmd = tokio::process::Command::new(&argv[0]);
    // The hook gets wharf's environment, but not the passwords given to `--user`.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("WHARF_PASSWORD_") {
            cmd.env_remove(name);
        }
    }
    cmd.args(&argv[1..])
        .env("WHARF_EVENT", ev.event)
        .env("WHARF_PATH", &ev.path)
        .env("WHARF_FILE", &ev.file)
        .env("WHARF_USER", &ev.user)
        .env("WHARF_CLIENT", &ev.client)
        .env("WHARF_SIZE", ev.size.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let result = match cmd.spawn() {
        Ok(mut child) => match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) if status.success() => return,
            Ok(Ok(status)) => format!("exited with {status}"),
            Ok(Err(e)) => e.to_string(),
            Err(_) => {
                let _ = child.kill().await;
                format!("timed out after {timeout:?}")
            }
        },
        Err(e) => format!("cannot start: {e}"),
    };
    tracing::warn!(command = %argv[0], path = %ev.path, error = %result, "upload hook failed");
}

async fn post(http: &reqwest::Client, url: &str, ev: &UploadEvent) {
    let body = match serde_json::to_vec(ev) {
        Ok(b) => b,
        Err(_) => return,
    };
    let result = http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .and_then(|r| r.error_for_status());
    if let Err(e) = result {
        // A token in the URL's query or user-info stays out of the log.
        let error = crate::http::error_text(&e);
        let shown = crate::http::redact(url);
        tracing::warn!(url = %shown, path = %ev.path, %error, "upload hook POST failed");
    }
}
