//! A blob sent in chunks (the distribution API's `POST`, `PATCH`..., `PUT ?digest=`),
//! each chunk retried with backoff: after a failure the registry is asked how much of the
//! upload it holds (`GET` of the session: `Range: 0-N`) and the upload goes on from there,
//! so a dropped link costs one chunk, not the layer; a session the registry lost (it
//! restarted) starts again from the beginning. Credentials as the registry client has
//! them: Basic, or a Bearer token bought again when it expires.

use std::io::SeekFrom;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::ui::ByteProgress;

/// Each chunk is one request, held once in memory while it goes: small enough that
/// `--jobs` blobs at once stay far under 64 MB (6 x 4 MiB), large enough that a request's
/// overhead does not count (measured: the same time as 8 MiB on loopback).
pub const CHUNK: u64 = 4 << 20;

/// What a chunked upload needs of the push.
pub struct Uploader<'a> {
    pub client: &'a Client,
    pub http: &'a reqwest::Client,
    pub auth: &'a RegistryAuth,
    /// `SCHEME://HOST[:PORT]`.
    pub base: &'a str,
    pub retries: u32,
    /// Where each retry is said.
    pub ui: &'a crate::ui::Ui,
}

/// The blob to send.
pub struct Blob<'a> {
    pub reference: &'a Reference,
    pub repository: &'a str,
    pub digest: &'a str,
    pub size: u64,
    pub path: &'a std::path::Path,
}

impl Uploader<'_> {
    /// The `Authorization` header for pushing to the blob's repository, if any: a
    /// Bearer token where the registry's challenge asks for one (bought anew each time:
    /// after a 401, the old one expired), else the Basic credentials.
    async fn authorization(&self, blob: &Blob<'_>) -> Result<Option<String>> {
        let token = self
            .client
            .auth(blob.reference, self.auth, RegistryOperation::Push)
            .await
            .context("logging in to push")?;
        if let Some(token) = token {
            return Ok(Some(format!("Bearer {token}")));
        }
        let RegistryAuth::Basic(user, password) = self.auth else {
            return Ok(None);
        };
        let pair = format!("{user}:{password}");
        Ok(Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )))
    }

    /// Sends the blob from its start (or where a session left off), chunk by chunk.
    pub async fn send(&self, blob: &Blob<'_>, progress: &Arc<ByteProgress>) -> Result<()> {
        let mut authorization = self.authorization(blob).await?;
        let mut file = tokio::fs::File::open(blob.path)
            .await
            .with_context(|| format!("opening {}", blob.path.display()))?;
        let mut session = self
            .retried(blob, &mut authorization, |a| self.begin(blob, a))
            .await?;
        let mut offset = 0u64;
        let mut failures = 0;
        while offset < blob.size {
            let len = CHUNK.min(blob.size - offset);
            let mut chunk = vec![0; usize::try_from(len)?];
            file.seek(SeekFrom::Start(offset)).await?;
            file.read_exact(&mut chunk).await?;
            // Handed to the request whole (no copy), dropped once it is sent.
            let chunk = bytes::Bytes::from(chunk);
            match self
                .patch(&session, offset, chunk, authorization.as_deref())
                .await
            {
                Ok(next) => {
                    session = next;
                    offset += len;
                    progress.add(len);
                    failures = 0;
                }
                Err(e) => {
                    failures += 1;
                    if failures > self.retries || crate::process::interrupted() {
                        return Err(e);
                    }
                    self.ui.note(&format!(
                        "retrying {} at byte {offset} (try {} of {}): {e:#}",
                        blob.digest,
                        failures + 1,
                        self.retries + 1
                    ));
                    backoff(failures).await;
                    if is_unauthorized(&e)
                        && let Ok(renewed) = self.authorization(blob).await
                    {
                        authorization = renewed;
                    }
                    // Where the registry is: the rest goes from there, or all again in a
                    // new session (a registry still away fails the next chunk, which
                    // counts as one more failure).
                    if let Some(held) = self.held(&session, authorization.as_deref()).await {
                        offset = held;
                    } else if let Ok(fresh) = self.begin(blob, authorization.clone()).await {
                        session = fresh;
                        offset = 0;
                    }
                }
            }
        }
        let finished = self
            .retried(blob, &mut authorization, |a| self.finish(&session, blob, a))
            .await;
        finished.with_context(|| format!("completing the upload of {}", blob.digest))
    }

    /// Runs `step` with retries and backoff, renewing the credentials after a 401.
    async fn retried<T, F, Fut>(
        &self,
        blob: &Blob<'_>,
        authorization: &mut Option<String>,
        step: F,
    ) -> Result<T>
    where
        F: Fn(Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut failures = 0;
        loop {
            match step(authorization.clone()).await {
                Ok(value) => return Ok(value),
                Err(e) => {
                    failures += 1;
                    if failures > self.retries || crate::process::interrupted() {
                        return Err(e);
                    }
                    backoff(failures).await;
                    if is_unauthorized(&e)
                        && let Ok(renewed) = self.authorization(blob).await
                    {
                        *authorization = renewed;
                    }
                }
            }
        }
    }

    /// `POST .../blobs/uploads/`: the session's URL.
    async fn begin(&self, blob: &Blob<'_>, authorization: Option<String>) -> Result<String> {
        let url = format!("{}/v2/{}/blobs/uploads/", self.base, blob.repository);
        let response = with_auth(self.http.post(&url), authorization.as_deref())
            .header("Content-Length", "0")
            .send()
            .await?;
        expect(&response, StatusCode::ACCEPTED, "starting an upload")?;
        self.location(&response)
    }

    /// `PATCH` of one chunk at `offset`: the session's next URL.
    async fn patch(
        &self,
        session: &str,
        offset: u64,
        chunk: bytes::Bytes,
        authorization: Option<&str>,
    ) -> Result<String> {
        let end = offset + chunk.len() as u64 - 1;
        let response = with_auth(self.http.patch(session), authorization)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", format!("{offset}-{end}"))
            .body(chunk)
            .send()
            .await?;
        expect(&response, StatusCode::ACCEPTED, "sending a chunk")?;
        self.location(&response)
    }

    /// How many bytes of the session the registry holds (`Range: 0-N` is N + 1), or
    /// `None` when it no longer knows the session.
    async fn held(&self, session: &str, authorization: Option<&str>) -> Option<u64> {
        let response = with_auth(self.http.get(session), authorization)
            .send()
            .await
            .ok()?;
        if response.status() != StatusCode::NO_CONTENT {
            return None;
        }
        let range = response.headers().get("Range")?.to_str().ok()?;
        let end: u64 = range.rsplit('-').next()?.parse().ok()?;
        Some(end + 1)
    }

    /// `PUT ?digest=`: the blob is complete.
    async fn finish(
        &self,
        session: &str,
        blob: &Blob<'_>,
        authorization: Option<String>,
    ) -> Result<()> {
        let separator = if session.contains('?') { '&' } else { '?' };
        let url = format!("{session}{separator}digest={}", blob.digest);
        let response = with_auth(self.http.put(&url), authorization.as_deref())
            .header("Content-Length", "0")
            .send()
            .await?;
        expect(&response, StatusCode::CREATED, "completing an upload")
    }

    /// The `Location` of an answer, made absolute.
    fn location(&self, response: &reqwest::Response) -> Result<String> {
        let location = response
            .headers()
            .get("Location")
            .and_then(|l| l.to_str().ok())
            .context("the registry gave no Location for the upload")?;
        Ok(if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location.to_string()
        })
    }
}

fn with_auth(
    request: reqwest::RequestBuilder,
    authorization: Option<&str>,
) -> reqwest::RequestBuilder {
    match authorization {
        Some(value) => request.header("Authorization", value),
        None => request,
    }
}

/// An error for an answer other than `wanted`, with its status kept for
/// [`is_unauthorized`].
fn expect(response: &reqwest::Response, wanted: StatusCode, what: &str) -> Result<()> {
    let status = response.status();
    if status == wanted {
        return Ok(());
    }
    bail!(UnexpectedStatus {
        status,
        what: what.to_string()
    })
}

#[derive(Debug)]
struct UnexpectedStatus {
    status: StatusCode,
    what: String,
}

impl std::fmt::Display for UnexpectedStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: the registry answered {}", self.what, self.status)
    }
}

impl std::error::Error for UnexpectedStatus {}

fn is_unauthorized(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<UnexpectedStatus>()
        .is_some_and(|u| u.status == StatusCode::UNAUTHORIZED)
}

/// 1 s, 2 s, 4 s ... up to 30 s, ending early on a signal.
async fn backoff(failures: u32) {
    let wait =
        Duration::from_secs(1 << failures.saturating_sub(1).min(5)).min(Duration::from_secs(30));
    let step = Duration::from_millis(100);
    let mut waited = Duration::ZERO;
    while waited < wait && !crate::process::interrupted() {
        tokio::time::sleep(step).await;
        waited += step;
    }
}
