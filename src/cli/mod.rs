//! The `wharf` binary's command line (not part of the library): `serve` and the admin
//! commands, each in its file; `main.rs` holds the command table and the small commands.

use std::path::{Path, PathBuf};

pub mod admin;
pub mod serve;

/// The configuration file every subcommand reads when none is named: the packaged service's.
pub const DEFAULT_CONFIG: &str = "/etc/wharf/wharf.toml";

/// The one rule every subcommand follows for its configuration file: `--config FILE` (or
/// `WHARF_CONFIG`, which clap folds into the flag), else `default` when it exists, else none
/// (the embedded default). So `wharf serve`, `wharf who` and `wharf check-config` on the
/// same machine read the same file.
pub fn config_path(named: Option<PathBuf>, default: &Path) -> Option<PathBuf> {
    named.or_else(|| default.is_file().then(|| default.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_file_wins_then_the_default_only_when_it_exists() {
        let dir = std::env::temp_dir().join(format!("wharf-cfgpath-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let default = dir.join("wharf.toml");
        let named = PathBuf::from("/somewhere/else.toml");
        assert_eq!(config_path(None, &default), None);
        std::fs::write(&default, "").unwrap();
        assert_eq!(config_path(None, &default), Some(default.clone()));
        assert_eq!(config_path(Some(named.clone()), &default), Some(named));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
