//! `ImageStatus` (`crictl inspecti`): the image, or none when it is not here (not an error).

use crate::{pb, Cri, Result};

impl Cri {
    pub(crate) fn image_status(
        &self,
        r: pb::ImageStatusRequest,
    ) -> Result<pb::ImageStatusResponse> {
        let name = r.image.map(|s| s.image).unwrap_or_default();
        if name.is_empty() {
            return Err(crate::Error::InvalidArgument(
                "ImageSpec image is empty".into(),
            ));
        }
        let Ok(v) = self.engine.image_inspect(&name) else {
            return Ok(pb::ImageStatusResponse::default());
        };
        let image = crate::image_list::cri_image(&v);
        if image.id.is_empty() || image.size == 0 {
            // caught in the middle of a removal (its layers going): not there for the CRI,
            // whose clients refuse an image without ID or size
            return Ok(pb::ImageStatusResponse::default());
        }
        let mut info = std::collections::HashMap::new();
        if r.verbose {
            let i = serde_json::json!({
                "imageSpec": {"config": v["Config"], "architecture": v["Architecture"], "os": v["Os"]},
                "created": v["Created"],
            });
            info.insert("info".to_string(), i.to_string());
        }
        Ok(pb::ImageStatusResponse {
            image: Some(image),
            info,
        })
    }
}
