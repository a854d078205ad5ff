//! `meterd tokens create NAME`, `meterd tokens list [--json]`, `meterd tokens revoke NAME`:
//! bearer tokens of billing API clients. The token is shown once; only its hash is stored.

use clap::Subcommand;
use serde::{Deserialize, Serialize};

use super::Ctx;
use super::output::print_json;
use crate::billing::tokens;

#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokensCmd {
    /// Create a token for billing client NAME and print it (the only time it is shown).
    Create { name: String },
    /// List tokens: name, created, revoked (never the token).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke NAME's token: its requests get 401 from now on.
    Revoke { name: String },
}

#[derive(Serialize)]
struct TokenView {
    name: String,
    created_at: String,
    revoked_at: Option<String>,
}

pub fn run(ctx: &Ctx<'_>, cmd: TokensCmd) -> anyhow::Result<()> {
    let store = ctx.store;
    let now = jiff::Timestamp::now();
    match cmd {
        TokensCmd::Create { name } => {
            let token = tokens::create(store, &name, now)?;
            say!(ctx, "{token}");
            note!(
                ctx,
                "token for billing client {name:?} created; it is shown only now: store it in the client's secret store"
            );
        }
        TokensCmd::List { json } => {
            let list: Vec<TokenView> = tokens::list(store)?
                .into_iter()
                .map(|t| TokenView {
                    name: t.name,
                    created_at: t.created_at.to_string(),
                    revoked_at: t.revoked_at.map(|r| r.to_string()),
                })
                .collect();
            if json {
                return print_json(ctx, &list);
            }
            if list.is_empty() {
                say!(ctx, "no tokens; create one with `meterd tokens create NAME`");
            }
            for t in list {
                match t.revoked_at {
                    Some(r) => say!(ctx, "{:<24} created {}  revoked {}", t.name, t.created_at, r),
                    None => say!(ctx, "{:<24} created {}  active", t.name, t.created_at),
                }
            }
        }
        TokensCmd::Revoke { name } => {
            tokens::revoke(store, &name, now)?;
            say!(ctx, "token of {name:?} revoked");
        }
    }
    Ok(())
}
