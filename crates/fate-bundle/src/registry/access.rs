//! Reaching a registry as Docker does: plain HTTP only on loopback or when asked
//! (`--insecure`), HTTPS with the system's roots plus a private CA (`--ca-file`, or
//! `/etc/docker/certs.d/HOST[:PORT]/*.crt` as Docker reads it); credentials from `--user`
//! (the password from stdin or a variable, never argv), else Docker's `config.json` (its
//! `auths`, or the credential helper it names), else none. Basic auth and the Bearer token
//! flow are the client's. The registry is asked once (`GET /v2/`) before any work, so a
//! certificate or address problem is named with its fixes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use docker_credential::{CredentialRetrievalError as E, DockerCredential};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;

use super::target::Target;

/// How to reach and log in to the registry, as the user gave it.
#[derive(Clone, Debug, Default)]
pub struct Access {
    pub user: Option<String>,
    /// The variable holding the password (`--password-env`); else it is read from stdin.
    pub password_env: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub insecure: bool,
    pub timeout: Duration,
}

/// The client's settings and credentials, once the registry answered.
pub struct Reached {
    pub config: ClientConfig,
    pub auth: RegistryAuth,
    /// An HTTP client with the same trust, and the registry's base URL
    /// (`SCHEME://HOST[:PORT]`), for the chunked uploads.
    pub http: reqwest::Client,
    pub base: String,
    /// How it was reached and who logs in, for the first line the user sees.
    pub how: String,
}

const CERTS_D: &str = "/etc/docker/certs.d";
/// The largest CA bundle or `config.json` read.
const SMALL_FILE: u64 = 4 << 20;

/// Checks what can be checked without the network (files, variables), then asks the
/// registry's `/v2/` endpoint with that.
pub fn reach(target: &Target, access: &Access) -> Result<Reached> {
    let (roots, roots_from) = roots(target, access)?;
    let auth = credentials(target, access)?;
    let runtime = runtime()?;
    let (protocol, accept_invalid) = runtime.block_on(probe(target, access, &roots))?;
    let scheme = match (&protocol, accept_invalid) {
        (ClientProtocol::HttpsExcept(_) | ClientProtocol::Http, _) => "http",
        (ClientProtocol::Https, true) => "https (certificate not checked: --insecure)",
        (ClientProtocol::Https, false) => "https",
    };
    let who = match &auth {
        RegistryAuth::Anonymous => "anonymously".to_string(),
        RegistryAuth::Basic(user, _) => format!("as {user}"),
        RegistryAuth::Bearer(_) => "with a token".to_string(),
    };
    // A host without a CA store of its own (a scratch container) trusts Mozilla's roots
    // and the registry's CA; any other, its own store and the registry's CA.
    let http = http_client(access, &roots, accept_invalid)
        .context("cannot make the registry's HTTP client")?;
    let (only, extra) = if has_system_roots() {
        (Vec::new(), roots)
    } else {
        (with_bundled_roots(roots), Vec::new())
    };
    let config = ClientConfig {
        protocol,
        accept_invalid_certificates: accept_invalid,
        tls_certs_only: only,
        extra_root_certificates: extra,
        read_timeout: Some(access.timeout),
        connect_timeout: Some(access.timeout),
        platform_resolver: None,
        ..ClientConfig::default()
    };
    let base = format!(
        "{}://{}",
        if scheme == "http" { "http" } else { "https" },
        target.registry
    );
    Ok(Reached {
        config,
        auth,
        http,
        base,
        how: format!("{scheme}://{}{roots_from} {who}", target.registry),
    })
}

/// The tokio runtime the registry client runs on: two workers (the work is I/O).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    install_crypto_provider();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the registry client's runtime")
}

/// rustls needs one crypto provider chosen for the process (ring: no C toolchain; its
/// classic key exchanges are what private registries offer).
fn install_crypto_provider() {
    #[allow(
        deprecated,
        reason = "ring's provider lacks post-quantum key exchange, which no private registry needs"
    )]
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Extra CA certificates: `--ca-file`, else Docker's `certs.d` directory for the registry.
fn roots(target: &Target, access: &Access) -> Result<(Vec<Certificate>, String)> {
    let files: Vec<PathBuf> = if let Some(ca) = &access.ca_file {
        vec![ca.clone()]
    } else {
        let dir = Path::new(CERTS_D).join(&target.registry);
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "crt"))
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    };
    let mut certs = Vec::new();
    for file in &files {
        let data = read_small(file).with_context(|| {
            format!(
                "cannot read the CA certificate {}: name a PEM file with --ca-file",
                file.display()
            )
        })?;
        if !String::from_utf8_lossy(&data).contains("-----BEGIN CERTIFICATE-----") {
            bail!(
                "{} is not a PEM certificate (no BEGIN CERTIFICATE line): give the registry's CA certificate in PEM form",
                file.display()
            );
        }
        certs.push(Certificate {
            encoding: CertificateEncoding::Pem,
            data,
        });
    }
    let from = if files.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        format!(" (trusting {})", names.join(", "))
    };
    Ok((certs, from))
}

fn read_small(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(SMALL_FILE + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > SMALL_FILE {
        bail!("{} is over {SMALL_FILE} bytes", path.display());
    }
    Ok(bytes)
}

/// `--user` with its password, else Docker's stored credentials for the registry.
fn credentials(target: &Target, access: &Access) -> Result<RegistryAuth> {
    if let Some(user) = &access.user {
        let password = match &access.password_env {
            Some(var) => std::env::var(var).map_err(|_| {
                anyhow::anyhow!(
                    "--password-env {var}: the variable is not set (export {var}=..., or pipe the password on stdin without --password-env)"
                )
            })?,
            None => read_password_from_stdin(user)?,
        };
        return Ok(RegistryAuth::Basic(user.clone(), password));
    }
    if access.password_env.is_some() {
        bail!("--password-env needs --user: name the registry user too");
    }
    stored_credentials(&target.registry)
}

fn read_password_from_stdin(user: &str) -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!(
            "--user {user}: no password on stdin: pipe it (e.g. printf %s \"$PASSWORD\" | ... --user {user}) or name a variable with --password-env VAR"
        );
    }
    Ok(password)
}

/// Docker's `config.json` (`$DOCKER_CONFIG`, else `~/.docker`): a login's `auths` entry, or
/// what the credential helper it names gives; none when it has nothing for the registry.
fn stored_credentials(registry: &str) -> Result<RegistryAuth> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
    let Some(path) = dir.map(|d| d.join("config.json")) else {
        return Ok(RegistryAuth::Anonymous);
    };
    let Ok(bytes) = read_small(&path) else {
        return Ok(RegistryAuth::Anonymous);
    };
    match docker_credential::get_credential_from_reader(bytes.as_slice(), registry) {
        Ok(DockerCredential::UsernamePassword(user, password)) => {
            Ok(RegistryAuth::Basic(user, password))
        }
        Ok(DockerCredential::IdentityToken(token)) => Ok(RegistryAuth::Bearer(token)),
        Err(E::NoCredentialConfigured | E::ConfigNotFound | E::ConfigReadError) => {
            Ok(RegistryAuth::Anonymous)
        }
        Err(e) => bail!(
            "the credentials for {registry} in {} cannot be read ({e}): log in again (docker login {registry}), or pass --user",
            path.display()
        ),
    }
}

/// Asks `/v2/` over HTTPS, then, with `--insecure`, over HTTPS without checking the
/// certificate, then (loopback or `--insecure`) over plain HTTP, as Docker does: the
/// protocol that answered, and whether certificates go unchecked.
async fn probe(
    target: &Target,
    access: &Access,
    roots: &[Certificate],
) -> Result<(ClientProtocol, bool)> {
    let https_error = match get_v2("https", target, access, roots, false).await {
        Ok(true) => return Ok((ClientProtocol::Https, false)),
        Ok(false) => None,
        Err(e) => Some(e),
    };
    if access.insecure && matches!(get_v2("https", target, access, roots, true).await, Ok(true)) {
        return Ok((ClientProtocol::Https, true));
    }
    let plain_allowed = target.is_loopback() || access.insecure;
    if plain_allowed && matches!(get_v2("http", target, access, roots, false).await, Ok(true)) {
        return Ok((
            ClientProtocol::HttpsExcept(vec![target.registry.clone()]),
            false,
        ));
    }
    let chain = https_error.as_ref().map_or_else(
        || "it answers, but not as a registry".to_string(),
        |e| error_chain(e),
    );
    if https_error.as_ref().is_some_and(is_certificate_error) {
        bail!(
            "the registry {} presents a certificate this host does not trust ({chain}): give its CA with --ca-file CA.crt, or put it at {CERTS_D}/{}/ca.crt as Docker reads it; or, on a network you trust, pass --insecure",
            target.registry,
            target.registry
        );
    }
    bail!(
        "the registry {} does not answer at https://{}/v2/ ({chain}){}: check the address and port, and that the registry runs",
        target.registry,
        target.registry,
        if plain_allowed {
            " nor over plain HTTP"
        } else {
            " (a registry without TLS is reached only on loopback or with --insecure)"
        }
    );
}

/// Whether `/v2/` answers as a registry does: 200, or 401 asking for credentials.
async fn get_v2(
    scheme: &str,
    target: &Target,
    access: &Access,
    roots: &[Certificate],
    accept_invalid: bool,
) -> std::result::Result<bool, reqwest::Error> {
    let client = http_client(access, roots, accept_invalid)?;
    let status = client
        .get(format!("{scheme}://{}/v2/", target.registry))
        .send()
        .await?
        .status();
    Ok(status.is_success() || status == reqwest::StatusCode::UNAUTHORIZED)
}

/// An HTTP client trusting this host's store (or Mozilla's roots where it has none) and
/// `roots`, each request bounded by the timeout.
fn http_client(
    access: &Access,
    roots: &[Certificate],
    accept_invalid: bool,
) -> std::result::Result<reqwest::Client, reqwest::Error> {
    let certificates = |certs: &[Certificate]| {
        certs
            .iter()
            .filter_map(|c| match c.encoding {
                CertificateEncoding::Pem => reqwest::Certificate::from_pem(&c.data).ok(),
                CertificateEncoding::Der => reqwest::Certificate::from_der(&c.data).ok(),
            })
            .collect::<Vec<_>>()
    };
    let builder = reqwest::Client::builder()
        .connect_timeout(access.timeout)
        .timeout(access.timeout)
        .danger_accept_invalid_certs(accept_invalid);
    let builder = if has_system_roots() {
        builder.tls_certs_merge(certificates(roots))
    } else {
        builder.tls_certs_only(certificates(&with_bundled_roots(roots.to_vec())))
    };
    builder.build()
}

/// The variable naming a CA bundle to the TLS client (as OpenSSL reads it).
const CERT_FILE_VAR: &str = "SSL_CERT_FILE";

/// On a host with no CA store (a scratch container), runs this program again with
/// Mozilla's roots in a private file named by `SSL_CERT_FILE`, and gives its exit code:
/// the registry client cannot be made without a store to load. `None`: run here.
pub fn rerun_with_bundled_roots() -> Result<Option<i32>> {
    use base64::Engine;
    if has_system_roots() || std::env::var_os(CERT_FILE_VAR).is_some() {
        return Ok(None);
    }
    let mut pem = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let encoded = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    let dir = private_temp_dir("fate-xtask-roots-")?;
    let file = dir.path().join("roots.pem");
    std::fs::write(&file, pem).with_context(|| format!("cannot write {}", file.display()))?;
    let exe = std::env::current_exe().context("cannot find this program to run it again")?;
    let status = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CERT_FILE_VAR, &file)
        .status()
        .context("cannot run this program again with the bundled CA roots")?;
    Ok(Some(status.code().unwrap_or(1)))
}

/// A private temporary directory under `$TMPDIR` (made if missing: a scratch container
/// has no /tmp).
pub fn private_temp_dir(prefix: &str) -> Result<tempfile::TempDir> {
    let base = std::env::temp_dir();
    std::fs::create_dir_all(&base)
        .with_context(|| format!("cannot create the temporary directory {}", base.display()))?;
    tempfile::Builder::new().prefix(prefix).tempdir_in(&base).with_context(|| {
        format!(
            "cannot make a directory in {} (set TMPDIR to a writable directory with room for the bundle's layers)",
            base.display()
        )
    })
}

/// Whether this host has a CA store the TLS client can load.
fn has_system_roots() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        install_crypto_provider();
        reqwest::Client::builder().build().is_ok()
    })
}

fn with_bundled_roots(mut roots: Vec<Certificate>) -> Vec<Certificate> {
    roots.extend(
        webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|c| Certificate {
                encoding: CertificateEncoding::Der,
                data: c.to_vec(),
            }),
    );
    roots
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        parts.push(e.to_string());
        source = e.source();
    }
    parts.dedup();
    parts.join(": ")
}

fn is_certificate_error(error: &reqwest::Error) -> bool {
    let chain = error_chain(error).to_lowercase();
    chain.contains("certificate") || chain.contains("unknownissuer") || chain.contains("tls")
}
