//! One module per subcommand.

pub mod archive;
pub mod coverage;
pub mod expire;
pub mod filter;
pub mod findings;
pub mod ledger;
pub mod permissions;
pub mod plan;
pub mod run;
pub mod test;
pub mod validate;
