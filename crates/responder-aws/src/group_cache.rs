//! The security groups `isolate` found or created, remembered for the life of the
//! process: a warm start then moves the finding's ENIs in its first round trip.

use std::collections::HashMap;
use std::sync::Mutex;

/// Group ids by `(VPC, group name)`. Shared by every response of one executor.
#[derive(Debug, Default)]
pub(crate) struct GroupCache {
    ids: Mutex<HashMap<(String, String), String>>,
}

impl GroupCache {
    /// The id of the group with this name in this VPC, if an earlier response saw it.
    pub fn get(&self, vpc: &str, name: &str) -> Option<String> {
        self.ids
            .lock()
            .ok()?
            .get(&(vpc.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Remembers a group that exists and has the rules it must have.
    pub fn insert(&self, vpc: &str, name: &str, id: &str) {
        if let Ok(mut ids) = self.ids.lock() {
            ids.insert((vpc.to_owned(), name.to_owned()), id.to_owned());
        }
    }
}
