//! The expiry of `block-remote-ip`'s deny entries: what the function does on its
//! scheduled event and `responder expire` does on demand. The due records come from
//! the ledger (one Query, no scan); each entry is re-described and deleted only when
//! it is still exactly the responder's, in the account and region it was made in.

use std::time::SystemTime;

use crate::accounts::ClientPool;
use crate::clients::Clients;
use crate::ledger::{Ledger, LedgerError};

pub use crate::steps::block_remote_ip::{Expired, ExpiryOutcome};

/// Where the entries are removed.
#[derive(Debug, Clone, Copy)]
pub enum Acting<'a> {
    /// With these clients, whatever account the record names (the CLI without an
    /// organization, tests).
    Clients(&'a Clients),
    /// In each record's account and region, through the pool (the member role
    /// assumed for other accounts); records without an account use the home clients.
    Pool(&'a ClientPool),
}

/// Removes every deny entry due at `now` and ends its record: `removed` when the
/// entry was still ours and is deleted, `superseded` when the rule number holds
/// nothing or another entry (left as it is), `failed` when a call failed (the
/// record stays active and the next run tries again). An error only when the
/// ledger cannot be read.
pub async fn expire_due(
    ledger: &Ledger,
    acting: Acting<'_>,
    now: SystemTime,
) -> Result<Vec<Expired>, LedgerError> {
    crate::steps::block_remote_ip::expire_due(ledger, now, |b| async move {
        match acting {
            Acting::Clients(c) => Ok(c.ec2.clone()),
            Acting::Pool(pool) if b.account.is_empty() => Ok(pool.home().ec2.clone()),
            Acting::Pool(pool) => pool
                .clients(&b.account, &b.region, &b.finding_id)
                .await
                .map(|c| c.ec2)
                .map_err(|e| e.to_string()),
        }
    })
    .await
}
