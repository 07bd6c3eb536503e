//! One run at a time per FATE root: a second waits instead of corrupting staged contexts
//! or bundling images that are being rebuilt.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};

/// Takes the lock of the work directory `work`, waiting (and saying so) while another run holds it.
pub fn lock(work: &Path, ui: &fate_bundle::ui::Ui) -> Result<File> {
    std::fs::create_dir_all(work).with_context(|| format!("cannot create {}", work.display()))?;
    let path = work.join("lock");
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    if file.try_lock().is_err() {
        ui.note(&format!(
            "another cargo xtask is running on this FATE root; waiting for it ({})",
            path.display()
        ));
        file.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
    }
    Ok(file)
}
