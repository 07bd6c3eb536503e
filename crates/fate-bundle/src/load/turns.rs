//! Loads into one engine take turns: two loads of one image at once make the containerd
//! store refuse one of them ("already exists").

use std::fs::File;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::docker::engine;
use crate::process;
use crate::ui::Ui;

/// Takes this user's lock for loads into the engine the CLI talks to (by its endpoint),
/// waiting (and saying so) while another load holds it.
pub(super) fn lock_engine(ui: &Ui) -> Result<File> {
    let (dir, instead) = process::private::state_dir("locks")?;
    if let Some(why) = instead {
        ui.note(&format!("locks go to {} ({why})", dir.display()));
    }
    let endpoint = engine::endpoint();
    let key = hex::encode(&Sha256::digest(endpoint.as_bytes())[..8]);
    let path = dir.join(format!("load-{key}.lock"));
    let file = process::private::create_file(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    if file.try_lock().is_err() {
        ui.note(&format!(
            "another load into the engine at {endpoint} is running; waiting for it ({})",
            path.display()
        ));
        file.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
    }
    Ok(file)
}
