//! `PullImage` (`crictl pull`): berth's registry client into berth's image store.

use crate::{pb, Cri, Error, Result};
use std::sync::Arc;

/// The reference to pull: a bare name gets `:latest` (the engine would pull every tag).
pub(crate) fn pull_reference(image: &str) -> Result<String> {
    let r = berth_image::Reference::parse(image.trim())
        .map_err(|e| Error::InvalidArgument(format!("failed to pull image {image:?}: {e}")))?;
    let mut s = r.full();
    if r.tag.is_none() && r.digest.is_none() {
        s.push_str(":latest");
    }
    Ok(s)
}

/// The CRI's credentials as the registry client takes them (`auth` is base64 `user:pass`).
fn credentials(a: Option<pb::AuthConfig>) -> Result<berth_registry::Credentials> {
    let Some(a) = a else {
        return Ok(Default::default());
    };
    let (mut username, mut password) = (a.username, a.password);
    if !a.auth.is_empty() {
        let raw = decode_base64(&a.auth)
            .ok_or_else(|| Error::InvalidArgument("invalid auth: not base64".into()))?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (u, p) = text
            .split_once(':')
            .ok_or_else(|| Error::InvalidArgument("invalid auth: no user:password".into()))?;
        (username, password) = (u.to_string(), p.to_string());
    }
    Ok(berth_registry::Credentials {
        username,
        password,
        identity_token: if a.identity_token.is_empty() {
            a.registry_token
        } else {
            a.identity_token
        },
        serveraddress: a.server_address,
    })
}

/// Standard base64 (padding optional).
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim().trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

impl Cri {
    pub(crate) async fn pull_image(
        &self,
        r: pb::PullImageRequest,
    ) -> Result<pb::PullImageResponse> {
        let image = r.image.map(|s| s.image).unwrap_or_default();
        if image.is_empty() {
            return Err(Error::InvalidArgument("ImageSpec image is empty".into()));
        }
        let reference = pull_reference(&image)?;
        let creds = credentials(r.auth)?;
        let slot = self
            .pulls
            .lock()
            .expect("pulls lock")
            .entry(reference.clone())
            .or_default()
            .clone();
        let res = {
            let _one = slot.lock().await;
            let _shared = self.image_ops.read().await;
            self.pull_locked(&image, &reference, creds).await
        };
        // the layer store changed: the next ImageFsInfo counts again
        *self.fs_usage.lock().expect("fs usage lock") = None;
        // the last one out forgets the slot (the map's and ours are the two left)
        let mut pulls = self.pulls.lock().expect("pulls lock");
        if pulls
            .get(&reference)
            .is_some_and(|s| Arc::strong_count(s) <= 2)
        {
            pulls.remove(&reference);
        }
        res
    }

    async fn pull_locked(
        &self,
        image: &str,
        reference: &str,
        creds: berth_registry::Credentials,
    ) -> Result<pb::PullImageResponse> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<serde_json::Value>(64);
        let drain = tokio::spawn(async move {
            let mut err = None;
            while let Some(m) = rx.recv().await {
                if let Some(e) = m["errorDetail"]["message"].as_str().or(m["error"].as_str()) {
                    err = Some(e.to_string());
                }
            }
            err
        });
        let p = berth_engine::Progress::new(tx);
        let res = self
            .engine
            .image_pull(
                berth_engine::PullRequest {
                    image: reference.to_string(),
                    tag: String::new(),
                    platform: None,
                    creds,
                },
                &p,
            )
            .await;
        drop(p);
        let streamed = drain.await.ok().flatten();
        res.map_err(|e| Error::Internal(format!("failed to pull image {image:?}: {e}")))?;
        if let Some(e) = streamed {
            return Err(Error::Internal(format!(
                "failed to pull image {image:?}: {e}"
            )));
        }
        let img =
            self.engine.images().get(reference).map_err(|e| {
                Error::Internal(format!("pulled {reference} but cannot find it: {e}"))
            })?;
        Ok(pb::PullImageResponse {
            image_ref: img.id.as_str().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_auth() {
        assert_eq!(
            pull_reference("busybox").unwrap(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            pull_reference("127.0.0.1:5000/a:t").unwrap(),
            "127.0.0.1:5000/a:t"
        );
        assert!(pull_reference("UPPER").is_err());
        assert_eq!(decode_base64("dXNlcjpwYXNz").unwrap(), b"user:pass");
        let c = credentials(Some(pb::AuthConfig {
            auth: "dXNlcjpwYXNz".into(),
            ..Default::default()
        }))
        .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("user", "pass"));
    }
}
