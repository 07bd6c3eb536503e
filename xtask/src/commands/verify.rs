//! `cargo xtask verify [DIR]`: a bundle rebuilt from the commits it records and compared
//! with what it holds, image by image (see `crate::verify`). Prints one line per image:
//! `reproduced`, `same-layers`, `same-files` or `differs`, then the reference; a
//! difference is followed by its first differing layer and the files in it (or, every
//! layer the same, the fields of the config that differ).

use anyhow::Result;
use fate_bundle::manifest;
use fate_bundle::{check, load};

use crate::cli;
use crate::config::project::Project;
use crate::verify::{self, Verdict};

impl cli::Verify {
    pub fn run(self, project: &Project) -> Result<()> {
        let dir = self
            .bundle
            .clone()
            .unwrap_or_else(|| project.config.work_dir().join("bundle"));
        let key = load::verify_key(self.verify_key.clone());
        check::check_signature(&project.ui, &dir, key.as_deref(), "verified")?;
        let chosen = manifest::archives_of(&dir)?;
        let (wanted, elsewhere) = verify::wanted(project, &chosen.archives)?;
        for reference in &elsewhere {
            project.ui.note(&format!(
                "{reference} is not built by the image set (a third-party image): not rebuilt; its ID in bundle.json is what to compare with its source"
            ));
        }
        let engine = verify::RebuildEngine::ask(project)?;
        if let Some(note) = engine.note() {
            eprintln!("warning: {note}");
        }
        let found = verify::rebuild_and_compare(
            project,
            &engine,
            &chosen.archives,
            &wanted,
            self.chinese_mirror,
        )?;
        for f in &found {
            match &f.verdict {
                Verdict::Reproduced => println!("reproduced\t{}", f.reference),
                Verdict::SameLayers => println!("same-layers\t{}", f.reference),
                Verdict::SameFiles => println!("same-files\t{}", f.reference),
                Verdict::ConfigDiffers(fields) => {
                    println!("differs\t{}", f.reference);
                    println!("  every layer is the same; what differs:");
                    for field in fields {
                        println!("  its config's {field}");
                    }
                }
                Verdict::Differs { layer, changes } => {
                    println!("differs\t{}", f.reference);
                    println!("  layer {layer} is the first that differs:");
                    for change in changes.iter().take(50) {
                        println!("  {change}");
                    }
                    if changes.len() > 50 {
                        println!("  and {} more", changes.len() - 50);
                    }
                }
            }
        }
        verify::require_all_reproduced(&found)
    }
}
