//! One module per subcommand.

pub mod coverage;
pub mod plan;
pub mod test;
pub mod validate;
