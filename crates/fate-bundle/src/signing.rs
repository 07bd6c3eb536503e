//! Signed bundles, with minisign's format and Ed25519 (the `minisign` crate): `bundle
//! --sign-key` signs `bundle.json` (which holds every archive's size and sha256) and
//! `SHA256SUMS` as `*.minisig`, which Debian's `minisign -Vm FILE -p KEY.pub` verifies by
//! hand; `load --verify-key` checks `bundle.json`'s before it reads any archive.

use std::io::Cursor;
use std::path::Path;

use anyhow::{Context, Result, bail};
use minisign::{KeyPair, PublicKey, SecretKey, SignatureBox};

/// The signature file beside a signed file.
#[must_use]
pub fn signature_path(file: &Path) -> std::path::PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".minisig");
    name.into()
}

/// The secret key at `path`: its password, if it has one, from the environment variable
/// `password_env` names, else asked on the terminal (never taken from argv).
pub fn secret_key(path: &Path, password_env: Option<&str>) -> Result<SecretKey> {
    open_secret_key(path, || match password_env {
        Some(var) => Ok(Some(std::env::var(var).with_context(|| {
            format!("--sign-password-env {var}: the variable {var} is not set")
        })?)),
        // Asked on the terminal by the minisign crate, when there is one to ask on.
        None if std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .is_err() =>
        {
            bail!(
                "the secret key {} has a password, and there is no terminal to ask it on (CI, cron, a service): put the password in an environment variable and name it with --sign-password-env VAR",
                path.display()
            )
        }
        None => Ok(None),
    })
}

/// The secret key at `path`, opened with `password` where it has one.
pub fn secret_key_with_password(path: &Path, password: &str) -> Result<SecretKey> {
    open_secret_key(path, || Ok(Some(password.to_string())))
}

/// The secret key at `path`; `password` is asked only for a key that has one.
fn open_secret_key(
    path: &Path,
    password: impl FnOnce() -> Result<Option<String>>,
) -> Result<SecretKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the secret key {}", path.display()))?;
    // A key given its checksum here, and the public key it carries to check it by.
    let (text, own_public) = match with_checksum(&text) {
        Some((text, public)) => (text, Some(public)),
        None => (text, None),
    };
    let sk_box = minisign::SecretKeyBox::from_string(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a minisign secret key: {e}", path.display()))?;
    // A key without a password (cargo xtask keygen, minisign -G -W) opens as it is.
    match sk_box.clone().into_unencrypted_secret_key() {
        // A key given its checksum here holds no proof of its own: its signature must
        // verify with the public key it carries.
        Ok(key) => match own_public {
            Some(public) if !signs_for(&key, &public) => bail!(
                "cannot open the secret key {}: it has no password, and it does not sign for its own public key: it is damaged; make a new pair with cargo xtask keygen (or minisign -G)",
                path.display()
            ),
            _ => return Ok(key),
        },
        Err(e) if e.to_string().contains("Corrupted") => bail!(
            "cannot open the secret key {}: it has no password, and its checksum does not match its key: it is damaged; make a new pair with cargo xtask keygen (or minisign -G)",
            path.display()
        ),
        Err(_) => {}
    }
    let password = password()?;
    sk_box
        .into_secret_key(password)
        .map_err(|e| anyhow::anyhow!("cannot open the secret key {}: {e}", path.display()))
}

/// Where a secret key's fields lie in its decoded box: the signature algorithm, the key
/// derivation's (none: two zero bytes), then the key id, the key and its checksum.
const SIG_ALG: std::ops::Range<usize> = 0..2;
const KDF_ALG: std::ops::Range<usize> = 2..4;
const KEY_ID_AND_KEY: std::ops::Range<usize> = 54..126;
const CHECKSUM: std::ops::Range<usize> = 126..158;

/// A passwordless key as minisign 0.11 writes it (`minisign -G -W`: its checksum left all
/// zeros, which minisign itself never checks), given the checksum the format defines,
/// BLAKE2b-256 of the signature algorithm, key id and key, as minisign 0.12 writes it.
/// `None` for every other key, read as it is.
fn with_checksum(text: &str) -> Option<(String, PublicKey)> {
    use base64::Engine;
    use blake2::Digest;
    let mut lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| !l.starts_with("untrusted comment:"))?;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut bytes = engine.decode(lines[at].trim()).ok()?;
    let unencrypted = bytes.len() == CHECKSUM.end && bytes[KDF_ALG] == [0, 0];
    if !unencrypted || bytes[CHECKSUM].iter().any(|&b| b != 0) {
        return None;
    }
    let mut hasher = blake2::Blake2b::<blake2::digest::consts::U32>::new();
    hasher.update(&bytes[SIG_ALG]);
    hasher.update(&bytes[KEY_ID_AND_KEY]);
    bytes[CHECKSUM].copy_from_slice(&hasher.finalize());
    let fixed = engine.encode(&bytes);
    lines[at] = &fixed;
    // The public key it carries: the signature algorithm, the key id, the key's second half.
    let public = [
        &bytes[SIG_ALG],
        &bytes[KEY_ID_AND_KEY.start..KEY_ID_AND_KEY.start + 8],
        &bytes[KEY_ID_AND_KEY.end - 32..KEY_ID_AND_KEY.end],
    ]
    .concat();
    let public = PublicKey::from_base64(&engine.encode(public)).ok()?;
    Some((lines.join("\n") + "\n", public))
}

/// Whether `key` makes signatures `public` verifies.
fn signs_for(key: &SecretKey, public: &PublicKey) -> bool {
    let probe = b"fate-xtask key check";
    minisign::sign(None, key, Cursor::new(probe), None, None)
        .and_then(|signature| {
            minisign::verify(public, &signature, Cursor::new(probe), true, false, false)
        })
        .is_ok()
}

/// A minisign signature of `data`, as the text of a `.minisig` file.
pub fn sign(key: &SecretKey, data: &[u8], trusted_comment: &str) -> Result<String> {
    let signature = minisign::sign(
        None,
        key,
        Cursor::new(data),
        Some(trusted_comment),
        Some("signature from fate-xtask"),
    )
    .map_err(|e| anyhow::anyhow!("cannot sign: {e}"))?;
    Ok(signature.into_string())
}

/// Checks the signature of `file` (in `file.minisig`) with the public key at `key`.
pub fn verify(key: &Path, file: &Path) -> Result<()> {
    let public = std::fs::read_to_string(key)
        .with_context(|| format!("cannot read the public key {}", key.display()))?;
    let public = PublicKey::from_box(
        minisign::PublicKeyBox::from_string(&public)
            .map_err(|e| anyhow::anyhow!("{} is not a minisign public key: {e}", key.display()))?,
    )
    .map_err(|e| anyhow::anyhow!("{} is not a minisign public key: {e}", key.display()))?;
    let sig_path = signature_path(file);
    let Ok(sig_text) = std::fs::read_to_string(&sig_path) else {
        bail!(
            "{} is not signed ({} is missing): it may not come from whoever holds the key {}",
            file.display(),
            sig_path.display(),
            key.display()
        );
    };
    let signature = SignatureBox::from_string(&sig_text)
        .map_err(|e| anyhow::anyhow!("{} is not a minisign signature: {e}", sig_path.display()))?;
    let data = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    minisign::verify(&public, &signature, Cursor::new(data), true, false, false).map_err(|e| {
        anyhow::anyhow!(
            "the signature of {} does not match the key {} ({e}): it was changed, or signed by someone else",
            file.display(),
            key.display()
        )
    })
}

/// A new key pair in `dir`: `fate-bundle.key` (secret, mode 0600; with the password the
/// environment variable `password_env` holds, else none) and `fate-bundle.pub`.
pub fn keygen(
    dir: &Path,
    password_env: Option<&str>,
) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    use std::os::unix::fs::OpenOptionsExt;
    let (secret, public) = (dir.join("fate-bundle.key"), dir.join("fate-bundle.pub"));
    for path in [&secret, &public] {
        if path.exists() {
            bail!(
                "{} exists; keep it, or remove it to make a new key pair",
                path.display()
            );
        }
    }
    let pair = match password_env {
        Some(var) => {
            let password = std::env::var(var)
                .with_context(|| format!("--password-env {var}: the variable {var} is not set"))?;
            KeyPair::generate_encrypted_keypair(Some(password))
        }
        None => KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(|e| anyhow::anyhow!("cannot make a key pair: {e}"))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let sk_text = pair
        .sk
        .to_box(Some("fate-xtask bundle signing key"))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string();
    let pk_text = pair
        .pk
        .to_box()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret)
        .with_context(|| format!("cannot create {}", secret.display()))?;
    std::io::Write::write_all(&mut file, sk_text.as_bytes())?;
    std::fs::write(&public, pk_text)
        .with_context(|| format!("cannot write {}", public.display()))?;
    Ok((secret, public))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    /// A passwordless pair made by Debian 12's `minisign -G -W` (0.11), whose secret key
    /// carries no checksum.
    const MINISIGN_0_11_SECRET: &str = "untrusted comment: minisign encrypted secret key\nRWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAshpgK3mYb7Vb0FCZYefTX9PozGUfgVt2pRnipi1Dqtw8yS+eb/NcMhxNLiUpjzTIRD/F/kUxWwUNl8E6jWxbWUGxd5LO7j4ZAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    const MINISIGN_0_11_PUBLIC: &str = "untrusted comment: minisign public key B56F98792B601AB2\nRWSyGmAreZhvtRxNLiUpjzTIRD/F/kUxWwUNl8E6jWxbWUGxd5LO7j4Z\n";

    #[test]
    fn a_passwordless_key_of_minisign_0_11_signs() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public, file) = (
            dir.path().join("k.key"),
            dir.path().join("k.pub"),
            dir.path().join("bundle.json"),
        );
        std::fs::write(&secret, MINISIGN_0_11_SECRET).unwrap();
        std::fs::write(&public, MINISIGN_0_11_PUBLIC).unwrap();
        std::fs::write(&file, b"{}").unwrap();
        let key = secret_key(&secret, None).unwrap();
        std::fs::write(signature_path(&file), sign(&key, b"{}", "t").unwrap()).unwrap();
        verify(&public, &file).unwrap();
        // One changed byte of the key itself is still damage, checksum or none.
        let engine = base64::engine::general_purpose::STANDARD;
        let line = MINISIGN_0_11_SECRET.lines().nth(1).unwrap();
        let mut bytes = engine.decode(line).unwrap();
        bytes[70] ^= 1;
        let damaged = MINISIGN_0_11_SECRET.replace(line, &engine.encode(&bytes));
        std::fs::write(&secret, damaged).unwrap();
        let error = secret_key(&secret, None)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(error.contains("it is damaged"), "{error}");
    }

    #[test]
    fn a_signed_file_verifies_and_a_changed_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = keygen(dir.path(), None).unwrap();
        let key = secret_key(&secret, None).unwrap();
        let file = dir.path().join("bundle.json");
        std::fs::write(&file, b"{\"archives\": []}").unwrap();
        std::fs::write(
            signature_path(&file),
            sign(&key, b"{\"archives\": []}", "t").unwrap(),
        )
        .unwrap();
        verify(&public, &file).unwrap();
        std::fs::write(&file, b"{\"archives\": [1]}").unwrap();
        let e = format!("{:#}", verify(&public, &file).unwrap_err());
        assert!(e.contains("does not match the key"), "{e}");
        std::fs::remove_file(signature_path(&file)).unwrap();
        let e = format!("{:#}", verify(&public, &file).unwrap_err());
        assert!(e.contains("is not signed"), "{e}");
        assert!(keygen(dir.path(), None).is_err(), "an existing key is kept");
    }
}
