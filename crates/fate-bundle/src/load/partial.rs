//! The end of a load that loaded an update on a host lacking its base (`--allow-partial`).

/// A load that loaded what an update carries on a host that lacks images of the bundle
/// it updates (`--allow-partial`): the command ends with [`Partial::EXIT_CODE`].
#[derive(Debug)]
pub struct Partial(pub String);

impl Partial {
    /// Neither success (0) nor failure (1): the host does not hold the release.
    pub const EXIT_CODE: u8 = 3;
}

impl std::fmt::Display for Partial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Partial {}
