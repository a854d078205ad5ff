//! Who is acting: the operating system says, never the client.
//!
//! Through the daemon the caller is the peer of the control socket (`SO_PEERCRED`: the uid the
//! kernel reports for the connecting process); in process, the process's real uid (`getuid`,
//! not `$USER`, which anyone can set). The user name and groups come from the user database
//! (`getpwuid_r`, `getgrouplist`). That user is the clerk in the audit trail; an admin may act
//! for another user (`--on-behalf-of NAME`), and the entry then names both.

use std::ffi::CString;

use nix::unistd::{Gid, Group, Uid, User, getgrouplist};

use super::text;

/// A user as the operating system knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    /// The login name, or the uid in digits when the user database has no entry.
    pub name: String,
    /// Names of the groups the user is in (primary and supplementary, from the database).
    pub groups: Vec<String>,
}

impl Caller {
    /// The user with this uid; `gid` is the primary group the kernel reported (a peer's
    /// credentials), used when the database has no entry.
    pub fn from_uid(uid: u32, gid: Option<u32>) -> Caller {
        let user = User::from_uid(Uid::from_raw(uid)).ok().flatten();
        let name = user.as_ref().map_or_else(|| uid.to_string(), |u| u.name.clone());
        let primary = user.as_ref().map(|u| u.gid).or(gid.map(Gid::from_raw));
        let mut gids: Vec<Gid> = match (&user, primary) {
            (Some(u), Some(g)) => CString::new(u.name.as_bytes())
                .ok()
                .and_then(|c| getgrouplist(&c, g).ok())
                .unwrap_or_else(|| vec![g]),
            (None, Some(g)) => vec![g],
            (_, None) => Vec::new(),
        };
        gids.sort_by_key(|g| g.as_raw());
        gids.dedup();
        let groups = gids
            .into_iter()
            .filter_map(|g| Group::from_gid(g).ok().flatten().map(|g| g.name))
            .collect();
        Caller { uid, name, groups }
    }

    /// The user running this process (its real uid).
    pub fn of_process() -> Caller {
        Caller::from_uid(nix::unistd::getuid().as_raw(), Some(nix::unistd::getgid().as_raw()))
    }

    /// `alice (uid 1001)`, for refusals and logs.
    pub fn describe(&self) -> String {
        format!("{} (uid {})", self.name, self.uid)
    }

    /// The clerk recorded in the audit trail: the caller, or the user an admin acts for with
    /// both names (`alice (entered by root)`: the entry's clerk field is hash-covered, so both
    /// names are kept in it).
    pub fn clerk(&self, on_behalf_of: Option<&str>) -> String {
        match on_behalf_of {
            Some(other) if other != self.name => format!("{other} (entered by {})", self.name),
            _ => self.name.clone(),
        }
    }
}

/// Checks a name given with `--on-behalf-of`: a plain user name (letters, digits, `.`, `_`,
/// `-`; 1 to 32 characters, as `useradd` accepts), so it reads the same in the audit trail, the
/// log and on screen.
pub fn check_user_name(name: &str) -> Result<(), String> {
    text::check_text("--on-behalf-of", name)?;
    let ok = !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--on-behalf-of {name:?} is not a user name (1-32 letters, digits, '.', '_' or '-')"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_known_and_clerks_name_both() {
        let root = Caller::from_uid(0, Some(0));
        assert_eq!(root.name, "root");
        assert!(root.groups.iter().any(|g| g == "root"), "{:?}", root.groups);
        assert_eq!(root.clerk(None), "root");
        assert_eq!(root.clerk(Some("alice")), "alice (entered by root)");
        assert_eq!(root.clerk(Some("root")), "root");
        // No entry in the user database: the uid stands for the name.
        let ghost = Caller::from_uid(4_000_000_001, Some(4_000_000_001));
        assert_eq!(ghost.name, "4000000001");
    }

    #[test]
    fn on_behalf_of_names_are_plain() {
        assert!(check_user_name("ann.b-c_1").is_ok());
        for bad in ["", "-x", "a b", "ann\u{1b}[2J", "x".repeat(33).as_str(), "ann\n"] {
            assert!(check_user_name(bad).is_err(), "{bad:?}");
        }
    }
}
