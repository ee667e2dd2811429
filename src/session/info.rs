//! Replies that describe the server and the session: FEAT (RFC 2389), STAT without an
//! argument, HELP.

use super::*;
use wharf_proto::verbs::{self, Feat};

pub(super) fn help(topic: Option<&[u8]>) -> Reply {
    let known = || {
        verbs::VERBS
            .iter()
            .filter(|v| v.implemented)
            .flat_map(|v| std::iter::once(v.name).chain(v.aliases.iter().copied()))
    };
    if let Some(t) = topic {
        let t = t.trim_ascii().to_ascii_uppercase();
        if known().any(|v| v.as_bytes() == t.as_slice()) {
            let mut text = t;
            text.extend_from_slice(b" is supported.");
            return Reply::new(Code::Help, text);
        }
        return replies::HELP_UNKNOWN.reply();
    }
    let mut names: Vec<&str> = known().collect();
    names.sort_unstable();
    let mut lines = vec![b"The following commands are recognized:".to_vec()];
    for chunk in names.chunks(8) {
        let mut l = Vec::new();
        for v in chunk {
            l.extend_from_slice(format!(" {v:<5}").as_bytes());
        }
        lines.push(l);
    }
    lines.push(b"Help OK.".to_vec());
    Reply::multi(Code::Help, lines)
}

impl Session {
    pub(super) fn feat(&self) -> Reply {
        // RFC 4217 section 6: AUTH TLS, PBSZ and PROT only where TLS is offered.
        let tls = self.shared.tls().is_some()
            && (self.listener_tls() != TlsMode::Off || self.ctrl.stream.is_tls());
        let mut features: Vec<String> = verbs::VERBS
            .iter()
            .filter_map(|v| match v.feat {
                Feat::None => None,
                Feat::Line(l) => Some(l.to_string()),
                Feat::Tls(l) => tls.then(|| l.to_string()),
                Feat::Facts => Some(format!("MLST {}", self.facts.feat())),
            })
            .chain(verbs::EXTRA_FEATURES.iter().map(|l| l.to_string()))
            .collect();
        features.sort_unstable();
        let lines = std::iter::once(b"Features:".to_vec())
            .chain(features.into_iter().map(|f| format!(" {f}").into_bytes()))
            .chain(std::iter::once(b"End".to_vec()));
        Reply::multi(Code::SystemStatus, lines.collect())
    }

    pub(super) fn status(&self) -> Reply {
        let mut lines = vec![b"wharf FTP server status:".to_vec()];
        lines.push(format!(" Connected from {}", self.peer).into_bytes());
        match &self.login {
            Some(l) => lines.push(format!(" Logged in as {}", l.grant.user).into_bytes()),
            None => lines.push(b" Not logged in".to_vec()),
        }
        let ty = match self.ty {
            TransferType::Ascii => "ASCII",
            TransferType::Image => "BINARY",
        };
        lines.push(format!(" TYPE: {ty}; STRU: File; MODE: Stream").into_bytes());
        lines.push(
            format!(
                " Control connection: {}; data protection: {}",
                if self.ctrl.stream.is_tls() {
                    "TLS"
                } else {
                    "plain"
                },
                if self.prot_private {
                    "private"
                } else {
                    "clear"
                }
            )
            .into_bytes(),
        );
        match (&self.transfer, &self.data) {
            (Some(t), _) => lines.push(
                format!(
                    " Transfer in progress: {} bytes",
                    t.progress.load(Ordering::Relaxed)
                )
                .into_bytes(),
            ),
            (None, Some(DataSetup::Passive(_))) => lines.push(b" Passive mode set".to_vec()),
            (None, Some(DataSetup::Active(_))) => lines.push(b" Active mode set".to_vec()),
            (None, None) => lines.push(b" No data connection".to_vec()),
        }
        lines.push(b"End of status.".to_vec());
        Reply::multi(Code::SystemStatus, lines)
    }

    /// OPTS (RFC 2389): UTF8 is always on; MLST picks the facts (RFC 3659 section 7.9).
    pub(super) fn opts(&mut self, o: Opts) -> Reply {
        match o {
            Opts::Utf8(_) => replies::UTF8_ALWAYS_ON.reply(),
            Opts::Mlst(names) => {
                self.facts = Facts::select(&names);
                let enabled = self.facts.enabled();
                if enabled.is_empty() {
                    replies::MLST_OPTS_NONE.reply()
                } else {
                    Reply::new(Code::Ok, format!("MLST OPTS {enabled}"))
                }
            }
        }
    }

    /// TYPE (RFC 959): A or I.
    pub(super) fn set_type(&mut self, t: TransferType) -> Reply {
        self.ty = t;
        match t {
            TransferType::Ascii => replies::TYPE_ASCII.reply(),
            TransferType::Image => replies::TYPE_IMAGE.reply(),
        }
    }
}
