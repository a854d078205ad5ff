//! Billing API tokens: one per billing client, 256 random bits shown once at creation; the
//! store keeps only their SHA-256. A request's token is hashed and compared in constant time
//! against every live token.

use jiff::Timestamp;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::model::billing::ApiToken;
use crate::model::to_store_precision;
use crate::store::{Store, StoreError};

/// Prefix of every token, so a leaked one is recognisable in logs and secret scanners.
pub const PREFIX: &str = "mtd_";

/// Token errors.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a token named {0:?} exists; revoke it first or pick another name")]
    Exists(String),
    #[error("no token named {0:?}")]
    Unknown(String),
    #[error("token name {0:?}: use 1-64 letters, digits, '-', '_' or '.'")]
    BadName(String),
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn check_name(name: &str) -> Result<(), TokenError> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(TokenError::BadName(name.to_owned()))
    }
}

/// Create a token for billing client `name`; returns the token text (the only time it exists).
/// A revoked name may be reused.
pub fn create(store: &dyn Store, name: &str, now: Timestamp) -> Result<String, TokenError> {
    check_name(name)?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{PREFIX}{}", hex::encode(bytes));
    crate::store::write_within(store, crate::store::INTERACTIVE_DEADLINE, |txn| {
        if txn
            .api_tokens()?
            .iter()
            .any(|t| t.name == name && t.revoked_at.is_none())
        {
            return Err(TokenError::Exists(name.to_owned()));
        }
        txn.put_api_token(&ApiToken {
            name: name.to_owned(),
            sha256: hash(&token),
            created_at: to_store_precision(now),
            revoked_at: None,
        })?;
        Ok(token.clone())
    })
}

/// Every token (revoked ones too), by name.
pub fn list(store: &dyn Store) -> Result<Vec<ApiToken>, TokenError> {
    Ok(store.begin_read()?.api_tokens()?)
}

/// Revoke a token: requests with it get 401 from now on.
pub fn revoke(store: &dyn Store, name: &str, now: Timestamp) -> Result<(), TokenError> {
    crate::store::write_within(store, crate::store::INTERACTIVE_DEADLINE, |txn| {
        let mut t = txn
            .api_tokens()?
            .into_iter()
            .find(|t| t.name == name && t.revoked_at.is_none())
            .ok_or_else(|| TokenError::Unknown(name.to_owned()))?;
        t.revoked_at = Some(to_store_precision(now));
        txn.put_api_token(&t)?;
        Ok(())
    })
}

/// The client a presented token belongs to, if it is live.
pub fn verify(store: &dyn Store, presented: &str) -> Result<Option<String>, StoreError> {
    let h = hash(presented);
    let mut found = None;
    // Compare against every token so the time taken does not depend on which one matched.
    for t in store.begin_read()?.api_tokens()? {
        if bool::from(t.sha256.ct_eq(&h)) && t.revoked_at.is_none() {
            found = Some(t.name);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RedbStore;

    #[test]
    fn tokens_are_hashed_verified_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open_dir(dir.path()).unwrap();
        let now = Timestamp::now();
        let tok = create(&store, "cis", now).unwrap();
        assert!(tok.starts_with(PREFIX) && tok.len() == PREFIX.len() + 64);
        assert!(matches!(create(&store, "cis", now), Err(TokenError::Exists(_))));
        assert!(matches!(create(&store, "bad name", now), Err(TokenError::BadName(_))));
        assert_eq!(verify(&store, &tok).unwrap().as_deref(), Some("cis"));
        assert_eq!(verify(&store, "mtd_00").unwrap(), None);
        let listed = list(&store).unwrap();
        assert_eq!(listed.len(), 1);
        assert!(
            !format!("{listed:?}").contains(&tok[PREFIX.len()..]),
            "the token itself is never stored"
        );
        revoke(&store, "cis", now).unwrap();
        assert_eq!(verify(&store, &tok).unwrap(), None);
        assert!(matches!(revoke(&store, "cis", now), Err(TokenError::Unknown(_))));
        let again = create(&store, "cis", now).unwrap();
        assert_eq!(verify(&store, &again).unwrap().as_deref(), Some("cis"));
    }
}
