//! `responder archive`: ArchiveFindings / UnarchiveFindings from the terminal.

use responder_aws::Clients;
use responder_aws::console::Console;
use responder_core::ids::is_finding_id;

use crate::commands::findings::Target;
use crate::input;
use crate::output::{errln, outln};

/// Archives (or unarchives) the findings. Exit 0, or 2 (one line on stderr) for a
/// malformed id, an unknown detector or a refusal (a member account is told that only
/// the administrator account may archive member findings).
pub fn run(target: &Target<'_>, ids: &[String], unarchive: bool) -> u8 {
    if let Some(bad) = ids.iter().find(|id| !is_finding_id(id)) {
        errln!("{bad:?} is not a GuardDuty finding id");
        return 2;
    }
    let Some(runtime) = input::runtime() else {
        return 2;
    };
    runtime.block_on(async {
        let config = match target.config().await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let console = match Console::open(
            Clients::new(&config).guardduty,
            target.settings.detector_id.clone(),
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                errln!("{e}");
                return 2;
            }
        };
        match console.archive(ids, unarchive).await {
            Ok(()) => {
                outln!(
                    "{} {} finding{} on detector {}",
                    if unarchive { "unarchived" } else { "archived" },
                    ids.len(),
                    if ids.len() == 1 { "" } else { "s" },
                    console.detector()
                );
                0
            }
            Err(e) => {
                errln!("{e}");
                2
            }
        }
    })
}
