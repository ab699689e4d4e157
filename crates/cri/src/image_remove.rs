//! `RemoveImage` (`crictl rmi`): the image with all its names; an absent one is no error.

use crate::{pb, Cri, Result};

impl Cri {
    pub(crate) fn remove_image(
        &self,
        r: pb::RemoveImageRequest,
    ) -> Result<pb::RemoveImageResponse> {
        let name = r.image.map(|s| s.image).unwrap_or_default();
        if name.is_empty() {
            return Err(crate::Error::InvalidArgument(
                "ImageSpec image is empty".into(),
            ));
        }
        let Ok(img) = self.engine.images().get(&name) else {
            return Ok(pb::RemoveImageResponse {});
        };
        self.engine.image_remove(img.id.as_str(), true)?;
        Ok(pb::RemoveImageResponse {})
    }
}
