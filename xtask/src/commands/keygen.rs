//! `cargo xtask keygen`: a key pair to sign bundles with (minisign's format).

use anyhow::Result;
use fate_bundle::signing;

use crate::cli;

impl cli::Keygen {
    pub fn run(self) -> Result<()> {
        let (secret, public) = signing::keygen(&self.out, self.password_env.as_deref())?;
        println!("{}\n{}", secret.display(), public.display());
        eprintln!(
            "sign bundles with: cargo xtask bundle --sign-key {}; hosts verify them with: cargo xtask load --verify-key {} (or minisign -Vm bundle.json -p {}); keep the secret key off those hosts",
            secret.display(),
            public.display(),
            public.display()
        );
        Ok(())
    }
}
