//! `ListImages` (`crictl images`): the engine's images, the same store as `berth images`.

use crate::{pb, Cri, Result};
use serde_json::Value;

/// `docker.io/library/busybox:latest` for `busybox:latest` (CRI clients show full names).
pub(crate) fn full_name(familiar: &str) -> String {
    berth_image::Reference::parse(familiar)
        .map(|r| r.full())
        .unwrap_or_else(|_| familiar.to_string())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str())
                .filter(|s| *s != "<none>:<none>" && *s != "<none>@<none>")
                .map(full_name)
                .collect()
        })
        .unwrap_or_default()
}

/// A CRI image from the engine's inspect or list JSON (`Id`, `RepoTags`, `RepoDigests`,
/// `Size`, `Config.User`).
pub(crate) fn cri_image(v: &Value) -> pb::Image {
    let user = v["Config"]["User"].as_str().unwrap_or("");
    let (uid, username) = user_of(user);
    pb::Image {
        id: v["Id"].as_str().unwrap_or("").to_string(),
        repo_tags: strings(&v["RepoTags"]),
        repo_digests: strings(&v["RepoDigests"]),
        size: v["Size"].as_u64().unwrap_or(0),
        uid,
        username,
        spec: None,
        pinned: false,
    }
}

/// The image's `USER`: a numeric user is `uid`, a name `username` (the group part dropped).
pub(crate) fn user_of(user: &str) -> (Option<pb::Int64Value>, String) {
    let u = user.split(':').next().unwrap_or("");
    if u.is_empty() {
        return (None, String::new());
    }
    match u.parse::<i64>() {
        Ok(n) => (Some(pb::Int64Value { value: n }), String::new()),
        Err(_) => (None, u.to_string()),
    }
}

impl Cri {
    pub(crate) fn list_images(&self, r: pb::ListImagesRequest) -> Result<pb::ListImagesResponse> {
        let list = self
            .engine
            .image_list(&std::collections::HashMap::new(), false)?;
        let want = r
            .filter
            .and_then(|f| f.image)
            .map(|s| s.image)
            .filter(|s| !s.is_empty());
        let wanted_id = want
            .as_deref()
            .and_then(|w| self.engine.images().get(w).ok());
        let mut images = Vec::new();
        for v in list.as_array().into_iter().flatten() {
            if let Some(w) = &want {
                match &wanted_id {
                    Some(img) if img.id.as_str() == v["Id"].as_str().unwrap_or("") => {}
                    _ => {
                        let _ = w;
                        continue;
                    }
                }
            }
            // the list has no Config: the user comes from the image's own config
            let mut img = cri_image(v);
            if let Ok(i) = self.engine.images().get(&img.id) {
                let user = i
                    .config
                    .config
                    .as_ref()
                    .and_then(|c| c.user.clone())
                    .unwrap_or_default();
                (img.uid, img.username) = user_of(&user);
            }
            images.push(img);
        }
        Ok(pb::ListImagesResponse { images })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_names() {
        assert_eq!(user_of(""), (None, String::new()));
        assert_eq!(user_of("1002").0.map(|v| v.value), Some(1002));
        assert_eq!(user_of("www-data:50"), (None, "www-data".to_string()));
        assert_eq!(
            full_name("busybox:latest"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full_name("127.0.0.1:5000/a/b:t"), "127.0.0.1:5000/a/b:t");
    }
}
