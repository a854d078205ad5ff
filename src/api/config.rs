//! `[access]`: who may use meterd, by role.
//!
//! ```toml
//! [access]
//! clerks = { groups = ["meterd"] }              # review, reports, reads, orders, lists
//! supervisors = { groups = ["meterd-leads"] }   # also approvals, meter changes, orders complete, batches, routes
//! admins = { users = ["root"], groups = [] }    # also tokens, meter list imports, reload
//! ```
//! Each role lists Unix groups and user names; a user's role is the highest one that lists
//! the user or one of their groups (roles nest: an admin may do what a supervisor may, a
//! supervisor what a clerk may). A user in no role cannot use the control socket. A role left
//! out of the section keeps its default (clerks: group `meterd`; supervisors: nobody; admins:
//! `root`); a role given replaces its default.

use serde::{Deserialize, Serialize};

/// Most names one role may list.
const MAX_NAMES: usize = 256;

/// Members of one role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Members {
    /// Unix group names: every member of one has the role.
    pub groups: Vec<String>,
    /// User names (or numeric uids, for accounts the user database does not list).
    pub users: Vec<String>,
}

impl Members {
    fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.users.is_empty()
    }

    /// `group meterd, user root`, or `nobody` for an empty role.
    pub fn describe(&self) -> String {
        if self.is_empty() {
            return "nobody".into();
        }
        let mut parts: Vec<String> = self.groups.iter().map(|g| format!("group {g}")).collect();
        parts.extend(self.users.iter().map(|u| format!("user {u}")));
        parts.join(", ")
    }

    fn check(&self, role: &str) -> Result<(), String> {
        for (kind, names) in [("groups", &self.groups), ("users", &self.users)] {
            if names.len() > MAX_NAMES {
                return Err(format!("access.{role}.{kind} lists more than {MAX_NAMES} names"));
            }
            for n in names {
                let plain = !n.is_empty()
                    && n.len() <= 64
                    && n.chars().all(|c| c.is_ascii_alphanumeric() || "._-$".contains(c));
                if !plain {
                    return Err(format!("access.{role}.{kind}: {n:?} is not a user or group name"));
                }
            }
        }
        Ok(())
    }
}

/// `[access]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Review actions, reports, reads (list, import), meters list, orders list, audit,
    /// gateways/routes/batches lists.
    pub clerks: Members,
    /// Also approvals, meter changes, completing service orders, batches next/ack/export,
    /// route assignment.
    pub supervisors: Members,
    /// Also billing API tokens, meter list imports, reload.
    pub admins: Members,
}

impl Default for AccessConfig {
    /// A packaged install: group `meterd` are clerks, root is admin.
    fn default() -> Self {
        AccessConfig {
            clerks: Members {
                groups: vec!["meterd".into()],
                users: Vec::new(),
            },
            supervisors: Members::default(),
            admins: Members {
                groups: Vec::new(),
                users: vec!["root".into()],
            },
        }
    }
}

impl AccessConfig {
    pub fn check(&self) -> Result<(), String> {
        self.clerks.check("clerks")?;
        self.supervisors.check("supervisors")?;
        self.admins.check("admins")
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn defaults_and_partial_sections() {
        let c = Config::parse("", "t").unwrap();
        assert_eq!(c.access.clerks.groups, ["meterd"]);
        assert_eq!(c.access.admins.users, ["root"]);
        let c = Config::parse("[access]\nsupervisors = { users = [\"lead\"] }\n", "t").unwrap();
        assert_eq!(c.access.supervisors.users, ["lead"]);
        assert_eq!(c.access.clerks.groups, ["meterd"], "an absent role keeps its default");
        let e = Config::parse("[access]\nclerks = { group = [\"x\"] }\n", "t").unwrap_err();
        assert!(e.to_string().contains("group"), "{e}");
        let e = Config::parse("[access.admins]\nusers = [\"ro ot\"]\n", "t").unwrap_err();
        assert!(e.to_string().contains("access.admins.users"), "{e}");
    }
}
