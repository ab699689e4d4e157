//! `RemoveImage` (`crictl rmi`): the image with all its names; an absent one is no error; one
//! that a running container uses loses its names.

use crate::{pb, Cri, Result};

impl Cri {
    pub(crate) async fn remove_image(
        &self,
        r: pb::RemoveImageRequest,
    ) -> Result<pb::RemoveImageResponse> {
        let _alone = self.image_ops.write().await;
        *self.fs_usage.lock().expect("fs usage lock") = None;
        let name = r.image.map(|s| s.image).unwrap_or_default();
        if name.is_empty() {
            return Err(crate::Error::InvalidArgument(
                "ImageSpec image is empty".into(),
            ));
        }
        let Ok(img) = self.engine.images().get(&name) else {
            return Ok(pb::RemoveImageResponse {});
        };
        match self.engine.image_remove(img.id.as_str(), true) {
            // removed meanwhile by another request: what was asked is done
            Ok(_) | Err(berth_engine::Error::NotFound(_)) => Ok(pb::RemoveImageResponse {}),
            // a running container still uses it: its names go (as containerd's CRI does, the
            // image is no longer there for the CRI); its content stays until the container
            // is removed and the image pruned
            Err(berth_engine::Error::Conflict(_)) => {
                for name in img.repo_tags.iter().chain(&img.repo_digests) {
                    match self.engine.image_remove(name, true) {
                        Ok(_) | Err(berth_engine::Error::NotFound(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(pb::RemoveImageResponse {})
            }
            Err(e) => Err(e.into()),
        }
    }
}
