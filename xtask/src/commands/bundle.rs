//! `cargo xtask bundle`: the offline bundle of the images `.env` and the image set name,
//! for air-gapped hosts. What it carries is chosen here (missing third-party images
//! built or pulled first); the bundle is written by the `fate_bundle` library.

use std::path::{Path, PathBuf};

use anyhow::Result;
use fate_bundle::archive::streams::Packing;
use fate_bundle::docker::engine;
use fate_bundle::docker::images::LocalImages;
use fate_bundle::fsx::NewDir;
use fate_bundle::manifest::Built;
use fate_bundle::ui::Ui;
use fate_bundle::ui::problems::Problems;
use fate_bundle::{process, signing, update, write};

use crate::bundle;
use crate::cli;
use crate::config::project::{Project, workspace_root};
use crate::docker::argv;
use crate::facts::revision::head_commit;
use crate::run::lock;
use crate::steps::build::DIRTY;

/// What `bundle.json` records of how its images were built: the tree's commit, whether
/// every image carried was built from committed files, the epoch, engine and builder.
fn built(
    project: &Project,
    engine: &str,
    carried: &[String],
    local_images: &LocalImages,
) -> Result<Built> {
    let sh = &project.sh;
    let builder = crate::docker::engine::builder(sh).map_err(anyhow::Error::msg)?;
    Ok(Built {
        commit: head_commit(sh, &project.config.fate_root),
        clean: carried.iter().all(|r| {
            local_images
                .get(r)
                .and_then(|i| i.revision.as_deref())
                .is_none_or(|rev| !rev.ends_with(DIRTY))
        }),
        source_date_epoch: argv::SOURCE_DATE_EPOCH,
        engine: engine.to_string(),
        builder: crate::docker::engine::builder_description(sh, builder),
    })
}

impl cli::Bundle {
    pub fn run(self, project: &Project) -> Result<()> {
        let Project {
            set,
            config,
            ui,
            sh,
        } = project;
        // The key (and its password) first: a bundle that cannot be signed is not written.
        let signing_key = match &self.sign_key {
            Some(path) => Some(signing::secret_key(
                path,
                self.sign_password_env.as_deref(),
            )?),
            None => None,
        };
        let base = self.since.as_deref().map(update::Base::read).transpose()?;
        // Images are not rebuilt while they are being bundled.
        let _lock = lock::lock(&config.work_dir(), ui)?;
        let server = engine::check(sh)?;
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| config.work_dir().join("bundle"));
        // Removed again (while empty) if the bundle is not written.
        let out_dir = NewDir::create(&out)?;
        let groups = bundle::archive_images(set, config);
        let all: Vec<String> = groups.iter().flat_map(|(_, refs)| refs.clone()).collect();
        let mut local_images = engine::inspect_images(sh, &all);
        if self.pull_missing(project, &groups, &local_images)? {
            local_images = engine::inspect_images(sh, &all);
        }
        bundle::check_fate_images(set, config, &local_images)?;
        let groups = match &base {
            Some(base) => base.only_changed(ui, groups, &local_images),
            None => groups,
        };
        let carried: Vec<String> = groups.iter().flat_map(|(_, r)| r.clone()).collect();
        let sboms = bundle::sboms::of_images(set, config, &carried, &local_images)?;
        let packing = Packing::for_layers(
            self.compress,
            engine::image_store(sh)?.keeps_layers_compressed(),
        );
        let built = built(project, &server.version, &carried, &local_images)?;
        // The loader is built (or found current: cargo takes a tenth of a second to say
        // so) while the archives are written.
        let manifest = std::thread::scope(|scope| {
            let building =
                (!self.no_loader).then(|| scope.spawn(|| self.loader(ui, &config.work_dir())));
            let request = write::Request {
                out: &out,
                archives: &groups,
                packing,
                split_size: self.split_size,
                platform: self.platform.as_deref(),
                log_dir: &config.work_dir().join("logs"),
                sboms: &sboms,
                signing_key: signing_key.as_ref(),
                updates: base.as_ref().map(|base| base.updates(&all, &carried)),
                loader: Box::new(move || match building {
                    None => Ok(None),
                    Some(building) => building.join().expect("the loader's build does not panic"),
                }),
                built: Some(built),
            };
            write::write(ui, request, &local_images)
        })?;
        out_dir.keep();
        for archive in &manifest.archives {
            println!(
                "{}\t{}\t{}",
                out.join(&archive.file).display(),
                archive.size,
                archive.sha256
            );
        }
        Ok(())
    }

    /// Builds the loader the bundle carries (see `bundle::loader`), unless it does not fit
    /// `--split-size`.
    fn loader(&self, ui: &Ui, work_dir: &Path) -> Result<Option<PathBuf>> {
        let log = work_dir.join("logs").join("loader-build.log");
        let loader = bundle::loader::build(ui, &workspace_root(), &log)?;
        bundle::loader::fits(ui, loader, self.split_size)
    }

    /// Builds missing third-party images the image set declares, pulls the others
    /// (unless `--no-pull`); FATE's own must be built. Returns whether anything was added.
    fn pull_missing(
        &self,
        project: &Project,
        groups: &[(&str, Vec<String>)],
        local_images: &LocalImages,
    ) -> Result<bool> {
        let mut missing = Problems::new("images to bundle are missing");
        let mut pulled = false;
        // A bundle of one platform gets its missing images built or pulled for it.
        let for_platform = match &self.platform {
            Some(platform) => Some(for_platform(project, platform)?),
            None => None,
        };
        let builder = for_platform.as_ref().unwrap_or(project);
        for (name, refs) in groups {
            for r in refs.iter().filter(|r| !local_images.contains_key(*r)) {
                if *name != bundle::THIRD_PARTY {
                    missing.push(format!("{r} is not built; run: cargo xtask images"));
                } else if let Some(image) = project
                    .set
                    .images
                    .iter()
                    .find(|i| project.config.reference(i) == **r)
                {
                    // The image set builds it (the example's stand-ins): build, not pull.
                    project.ui.note(&format!(
                        "{r} is not present; building it from the image set (image {})",
                        image.name
                    ));
                    // Its summary goes to stderr: stdout is for the archives.
                    cli::Images::of(vec![image.name.clone()])
                        .run_locked(builder, &mut std::io::stderr())?;
                    pulled = true;
                } else if self.no_pull {
                    missing.push(format!(
                        "{r} is not present and --no-pull was given; pull or load it first"
                    ));
                } else {
                    pulled = true;
                    let line = project.ui.start(&format!("pull {r}"));
                    let log = project.config.work_dir().join("logs").join("pull.log");
                    let pull = argv::pull(r, self.platform.as_deref());
                    match process::run_logged(&pull, &log, &line) {
                        Ok(()) => line.finish("done", ""),
                        Err(e) => {
                            line.finish("FAILED", "");
                            missing.push(format!(
                                "cannot pull {r} (set REDIS_IMAGE/MYSQL_IMAGE in .env, or load it): {e:#}"
                            ));
                        }
                    }
                }
            }
        }
        missing.into_result().map(|()| pulled)
    }
}

/// `project` building for `platform` only.
fn for_platform(project: &Project, platform: &str) -> Result<Project> {
    let mut config = project.config.clone();
    config.build.platforms = vec![platform.to_string()];
    Ok(Project {
        set: project.set.clone(),
        config,
        ui: project.ui.clone(),
        sh: xshell::Shell::new()?,
    })
}
