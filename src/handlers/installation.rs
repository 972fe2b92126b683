//! An installation of the App changed: a reinstall has a new id, a deleted or suspended one
//! no longer mints tokens, and repositories may have moved between installations. The forge
//! forgets which installation acts where, so the next call asks GitHub again and no restart
//! is needed.

use crate::work::InstallationChange;

use super::{Ctx, Handled};

pub fn changed(ctx: &Ctx, change: &InstallationChange) -> Handled {
    tracing::info!(
        installation = change.installation_id,
        action = %change.action,
        "App installation changed"
    );
    ctx.forge.installations_changed();
    Handled::Acted
}
