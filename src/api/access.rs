//! Roles: what the caller's role allows, and the refusals that say so.
//!
//! Through the daemon, the role comes from `[access]` ([`AccessConfig`]) for the peer of the
//! socket. In process (no daemon), the same check applies to the process's user, except that
//! root and the owner of the store file are admins there: they can open and change the file
//! with any program anyway, so refusing them would protect nothing and lock out the operator
//! who set the store up.

use super::config::{AccessConfig, Members};
use super::identity::Caller;
use super::proto::{Request, Role};

/// Counted per refused request (label `role`: the role it needed; `none` for a user refused at
/// connect).
pub const REFUSED_METRIC: &str = crate::metrics::CONTROL_REFUSED;

fn member(m: &Members, caller: &Caller) -> bool {
    m.users
        .iter()
        .any(|u| *u == caller.name || *u == caller.uid.to_string())
        || m.groups.iter().any(|g| caller.groups.contains(g))
}

/// The caller's role from `[access]` (the highest that lists them), if any.
pub fn role_of(access: &AccessConfig, caller: &Caller) -> Option<Role> {
    [
        (Role::Admin, &access.admins),
        (Role::Supervisor, &access.supervisors),
        (Role::Clerk, &access.clerks),
    ]
    .into_iter()
    .find(|(_, m)| member(m, caller))
    .map(|(r, _)| r)
}

/// The role of the process's user working on the store directly: root and the store file's
/// owner are admins, the others as `[access]` says.
pub fn local_role(access: &AccessConfig, caller: &Caller, store_owner: Option<u32>) -> Option<Role> {
    if caller.uid == 0 || store_owner == Some(caller.uid) {
        return Some(Role::Admin);
    }
    role_of(access, caller)
}

/// Why a user in no role is refused, naming who would be admitted.
pub fn no_role(access: &AccessConfig, caller: &Caller) -> String {
    format!(
        "refused: {} has no meterd role; [access] admits clerks: {}; supervisors: {}; admins: {} (e.g. `sudo usermod -aG meterd {}`, then log in again)",
        caller.describe(),
        access.clerks.describe(),
        access.supervisors.describe(),
        access.admins.describe(),
        caller.name
    )
}

/// A request refused for the caller's role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The role it needed.
    pub needed: Role,
    pub message: String,
}

/// Whether `role` allows the request (and acting for another user, which only admins may).
pub fn check(caller: &Caller, role: Role, request: &Request, on_behalf_of: Option<&str>) -> Result<(), Refusal> {
    let needed = request.role();
    if role < needed {
        return Err(Refusal {
            needed,
            message: format!(
                "refused: `{}` needs the {needed} role; {} is {}",
                request.name(),
                caller.describe(),
                role.with_article()
            ),
        });
    }
    if on_behalf_of.is_some() && role < Role::Admin {
        return Err(Refusal {
            needed: Role::Admin,
            message: format!(
                "refused: --on-behalf-of needs the admin role; {} is {}",
                caller.describe(),
                role.with_article()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::commands::{Command, TokensCmd};

    fn caller(name: &str, uid: u32, groups: &[&str]) -> Caller {
        Caller {
            uid,
            name: name.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    #[test]
    fn roles_from_groups_and_users() {
        let a = AccessConfig::default();
        assert_eq!(
            role_of(&a, &caller("alice", 1001, &["alice", "meterd"])),
            Some(Role::Clerk)
        );
        assert_eq!(role_of(&a, &caller("root", 0, &["root"])), Some(Role::Admin));
        assert_eq!(role_of(&a, &caller("eve", 1002, &["eve"])), None);
        // Locally, the store's owner is admin whatever [access] says.
        assert_eq!(
            local_role(&a, &caller("eve", 1002, &["eve"]), Some(1002)),
            Some(Role::Admin)
        );
        assert_eq!(local_role(&a, &caller("eve", 1002, &["eve"]), Some(1)), None);
        let msg = no_role(&a, &caller("eve", 1002, &["eve"]));
        assert!(
            msg.contains("eve (uid 1002)") && msg.contains("clerks: group meterd") && msg.contains("admins: user root"),
            "{msg}"
        );
    }

    #[test]
    fn refusals_name_the_role_and_the_user() {
        let alice = caller("alice", 1001, &["meterd"]);
        let create = Request::Command(Command::Tokens(TokensCmd::Create { name: "cis".into() }));
        let r = check(&alice, Role::Clerk, &create, None).unwrap_err();
        assert_eq!(r.needed, Role::Admin);
        assert!(
            r.message.contains("`tokens create` needs the admin role")
                && r.message.contains("alice (uid 1001) is a clerk"),
            "{}",
            r.message
        );
        assert!(check(&alice, Role::Admin, &create, None).is_ok());
        let list = Request::ReviewQueue {
            filter: Default::default(),
        };
        assert!(check(&alice, Role::Clerk, &list, None).is_ok());
        let r = check(&alice, Role::Supervisor, &list, Some("bob")).unwrap_err();
        assert!(
            r.message.contains("--on-behalf-of needs the admin role"),
            "{}",
            r.message
        );
    }
}
