//! Playbooks: the file format, loading with located errors, and validation.

pub mod lint;
pub mod load;
pub mod model;
pub mod validate;
mod yaml_path;
pub use load::{LoadedPlaybook, load_dir, load_str};
pub use model::{Limits, Mode, Playbook};
