//! One module per step, named after the step.

mod capture_console_output;
mod deregister_from_target_groups;
mod detach_from_asg;
mod isolate;
mod notify;
mod protect;
mod relaunch;
mod release;
mod revoke_instance_profile;
mod snapshot;
mod stop;
mod tag;
mod terminate;
