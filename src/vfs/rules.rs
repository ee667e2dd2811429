//! What a login may do where: [`Perms`] (one flag per kind of operation), [`Rules`] (a
//! base set and per-directory replacements), and [`Authorized`], the proof that the rules
//! allow an operation at a path. The jail's operations that read or change a file take an
//! `Authorized`, and only [`Rules::authorize`] makes one, so a handler cannot act on a path
//! it did not check.

use crate::config::{AnonymousMode, DirRule, Permission};
use crate::error::Error;

use super::VPath;

/// What a login may do. Each flag guards one kind of operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Perms {
    pub list: bool,
    pub read: bool,
    /// Create new files.
    pub upload: bool,
    /// Replace existing files (STOR over a name, REST+STOR).
    pub overwrite: bool,
    pub append: bool,
    /// REST before STOR.
    pub resume: bool,
    pub mkdir: bool,
    pub rename: bool,
    pub delete: bool,
    pub rmdir: bool,
    pub chmod: bool,
    pub mtime: bool,
}

impl Perms {
    pub const NONE: Perms = Perms {
        list: false,
        read: false,
        upload: false,
        overwrite: false,
        append: false,
        resume: false,
        mkdir: false,
        rename: false,
        delete: false,
        rmdir: false,
        chmod: false,
        mtime: false,
    };
    pub const READ: Perms = Perms {
        list: true,
        read: true,
        ..Perms::NONE
    };
    pub const ALL: Perms = Perms {
        list: true,
        read: true,
        upload: true,
        overwrite: true,
        append: true,
        resume: true,
        mkdir: true,
        rename: true,
        delete: true,
        rmdir: true,
        chmod: true,
        mtime: true,
    };
    /// The drop box: new files and directories only.
    pub const DROP_BOX: Perms = Perms {
        upload: true,
        mkdir: true,
        ..Perms::NONE
    };

    pub fn from_list(list: &[Permission]) -> Perms {
        let mut p = Perms::NONE;
        for perm in list {
            match perm {
                Permission::Read => {
                    p.list = true;
                    p.read = true;
                }
                Permission::Write => {
                    let r = (p.list, p.read);
                    p = Perms::ALL;
                    (p.list, p.read) = r;
                }
                Permission::List => p.list = true,
                Permission::Download => p.read = true,
                Permission::Upload => p.upload = true,
                Permission::Overwrite => p.overwrite = true,
                Permission::Append => p.append = true,
                Permission::Resume => p.resume = true,
                Permission::Mkdir => p.mkdir = true,
                Permission::Rename => p.rename = true,
                Permission::Delete => p.delete = true,
                Permission::Rmdir => p.rmdir = true,
                Permission::Chmod => p.chmod = true,
                Permission::Mtime => p.mtime = true,
            }
        }
        p
    }

    pub fn for_anonymous(mode: AnonymousMode) -> Perms {
        match mode {
            AnonymousMode::Off => Perms::NONE,
            AnonymousMode::Read => Perms::READ,
            AnonymousMode::Upload => Perms::DROP_BOX,
            AnonymousMode::Write => Perms::ALL,
        }
    }

    /// RFC 3659 `perm` fact for a file.
    pub fn file_fact(&self) -> Vec<u8> {
        let mut s = Vec::new();
        for (on, c) in [
            (self.append, b'a'),
            (self.delete, b'd'),
            (self.rename, b'f'),
            (self.read, b'r'),
            (self.overwrite, b'w'),
        ] {
            if on {
                s.push(c);
            }
        }
        s
    }

    /// RFC 3659 `perm` fact for a directory.
    pub fn dir_fact(&self) -> Vec<u8> {
        let mut s = Vec::new();
        for (on, c) in [
            (self.upload, b'c'),
            (self.rmdir, b'd'),
            (true, b'e'),
            (self.rename, b'f'),
            (self.list, b'l'),
            (self.mkdir, b'm'),
            (self.delete, b'p'),
        ] {
            if on {
                s.push(c);
            }
        }
        s
    }
}

/// A login's permissions: a base set and per-directory replacements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub base: Perms,
    /// Sorted longest path first, so the first match is the most specific.
    dirs: Vec<(VPath, Perms)>,
}

impl Rules {
    pub fn new(base: Perms, dirs: &[DirRule]) -> Rules {
        let mut dirs: Vec<(VPath, Perms)> = dirs
            .iter()
            .filter_map(|d| {
                let p = VPath::root().resolve(d.path.as_bytes()).ok()?;
                Some((p, Perms::from_list(&d.permissions)))
            })
            .collect();
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.as_bytes().len()));
        Rules { base, dirs }
    }

    /// The permissions that apply to `path`: those of the longest rule at or above it.
    pub fn at(&self, path: &VPath) -> Perms {
        self.dirs
            .iter()
            .find(|(dir, _)| path.is_within(dir))
            .map_or(self.base, |(_, p)| *p)
    }

    /// Whether `from` may be renamed to `to`. Both places must allow renaming, and no rule
    /// may lie strictly beneath either: moving a directory that holds a rule would carry
    /// its contents out from under it (a read-only `/data/archive` renamed along with
    /// `/data` becomes a writable `/data2/archive`), and moving one under a rule's path
    /// would put them under a rule the operator wrote for something else.
    pub fn may_rename(&self, from: &VPath, to: &VPath) -> bool {
        let beneath = |dir: &VPath, p: &VPath| p != dir && p.is_within(dir);
        self.at(from).rename
            && self.at(to).rename
            && !self
                .dirs
                .iter()
                .any(|(rule, _)| beneath(from, rule) || beneath(to, rule))
    }
}

/// A path at which the rules allowed an operation. Its fields are private to this module:
/// nothing else can make one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    path: VPath,
    perms: Perms,
}

/// Reads as its path (for what needs no permission: stat, listing, replies).
impl std::ops::Deref for Authorized {
    type Target = VPath;
    fn deref(&self) -> &VPath {
        &self.path
    }
}

impl Authorized {
    pub fn path(&self) -> &VPath {
        &self.path
    }

    /// The permissions at the path (what else the same operation may do, e.g. overwrite).
    pub fn perms(&self) -> Perms {
        self.perms
    }

    /// Another name in the same directory (a STOU candidate), under the same permission.
    pub fn with_name(&self, name: &[u8]) -> Result<Authorized, Error> {
        Ok(Authorized {
            path: self.path.with_name(name)?,
            perms: self.perms,
        })
    }

    /// This upload's hidden temporary name beside it, under the same permission.
    pub fn upload_temp(&self) -> Authorized {
        Authorized {
            path: self.path.upload_temp(),
            perms: self.perms,
        }
    }

    /// Where an interrupted upload of this name waits for a resume.
    pub fn upload_resume(&self) -> Authorized {
        Authorized {
            path: self.path.upload_resume(),
            perms: self.perms,
        }
    }
}

impl Rules {
    /// `path` with the proof that `may` holds of the permissions there; `Denied` if not.
    pub fn authorize(
        &self,
        path: VPath,
        may: impl Fn(&Perms) -> bool,
    ) -> Result<Authorized, Error> {
        let perms = self.at(&path);
        if !may(&perms) {
            return Err(Error::Denied);
        }
        Ok(Authorized { path, perms })
    }

    /// Both ends of a rename, if [`Rules::may_rename`] allows it.
    pub fn authorize_rename(
        &self,
        from: VPath,
        to: VPath,
    ) -> Result<(Authorized, Authorized), Error> {
        if !self.may_rename(&from, &to) {
            return Err(Error::Denied);
        }
        let (pf, pt) = (self.at(&from), self.at(&to));
        Ok((
            Authorized {
                path: from,
                perms: pf,
            },
            Authorized {
                path: to,
                perms: pt,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_rules_longest_match_wins() {
        let rules = Rules::new(
            Perms::READ,
            &[
                DirRule {
                    path: "/incoming".into(),
                    permissions: vec![Permission::Upload, Permission::Mkdir],
                },
                DirRule {
                    path: "/incoming/locked".into(),
                    permissions: vec![],
                },
            ],
        );
        let v = |s: &str| VPath::root().resolve(s.as_bytes()).unwrap();
        assert_eq!(rules.at(&v("/pub/a")), Perms::READ);
        assert!(rules.at(&v("/incoming")).upload);
        assert!(rules.at(&v("/incoming/x/y")).upload);
        assert!(!rules.at(&v("/incoming/x/y")).read);
        assert_eq!(rules.at(&v("/incoming/locked/z")), Perms::NONE);
        assert_eq!(
            rules.at(&v("/incomingX")),
            Perms::READ,
            "prefix of a name is no match"
        );
    }

    #[test]
    fn renames_cannot_carry_a_rule_away() {
        let rw = [Permission::Read, Permission::Write];
        let rules = Rules::new(
            Perms::from_list(&rw),
            &[
                DirRule {
                    path: "/data/archive".into(),
                    permissions: vec![Permission::Read],
                },
                DirRule {
                    path: "/drop/open".into(),
                    permissions: rw.to_vec(),
                },
            ],
        );
        let v = |s: &str| VPath::root().resolve(s.as_bytes()).unwrap();
        assert!(rules.may_rename(&v("/data/a.txt"), &v("/data/b.txt")));
        assert!(rules.may_rename(&v("/x"), &v("/y")));
        // The directory holding the read-only rule, or any parent of it.
        assert!(!rules.may_rename(&v("/data"), &v("/data2")));
        assert!(!rules.may_rename(&v("/"), &v("/z")));
        // Into or out of the read-only place, or the place itself.
        assert!(!rules.may_rename(&v("/data/archive"), &v("/old")));
        assert!(!rules.may_rename(&v("/data/archive/f"), &v("/f")));
        assert!(!rules.may_rename(&v("/f"), &v("/data/archive/f")));
        // A new name whose subtree a rule already names.
        assert!(!rules.may_rename(&v("/mine"), &v("/drop")));
        assert!(rules.may_rename(&v("/mine"), &v("/drop/open/mine")));
    }

    #[test]
    fn perms() {
        assert_eq!(
            Perms::from_list(&[Permission::Read, Permission::Write]),
            Perms::ALL
        );
        assert_eq!(
            Perms::from_list(&[Permission::Write, Permission::Read]),
            Perms::ALL
        );
        let w = Perms::from_list(&[Permission::Write]);
        assert!(!w.read && !w.list && w.upload);
        assert_eq!(Perms::ALL.file_fact(), b"adfrw");
        assert_eq!(Perms::ALL.dir_fact(), b"cdeflmp");
        assert_eq!(Perms::DROP_BOX.dir_fact(), b"cem");
    }

    #[test]
    fn authorization_follows_the_rules() {
        let rules = Rules::new(
            Perms::READ,
            &[DirRule {
                path: "/in".into(),
                permissions: vec![Permission::Upload],
            }],
        );
        let v = |s: &str| VPath::root().resolve(s.as_bytes()).unwrap();
        assert!(matches!(
            rules.authorize(v("/a"), |p| p.upload),
            Err(Error::Denied)
        ));
        let ok = rules.authorize(v("/in/a"), |p| p.upload).unwrap();
        assert_eq!(ok.path(), &v("/in/a"));
        assert_eq!(ok.with_name(b"b").unwrap().path(), &v("/in/b"));
        assert!(ok.upload_temp().path().is_internal());
        assert!(
            rules.authorize_rename(v("/a"), v("/b")).is_err(),
            "read-only base"
        );
    }
}
