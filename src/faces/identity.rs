// SPDX-License-Identifier: MPL-2.0
//! Source identities: the embedding of the largest face in an image, as Deep-Live-Cam takes
//! the source face (detector + ArcFace on a still picture).

use std::path::Path;
use std::sync::Arc;

use crate::backend::Backend;
use crate::face::EMBEDDING_LEN;
use crate::models::arcface::ArcFace;
pub use crate::models::arcface::normalized_embedding;
use crate::models::scrfd::ScrfdDetector;
use crate::models::swapper::inswapper::latent;
use crate::runtime::{ModelSession, RuntimeError, SessionOptions};
use crate::vision::{FrameView, RgbImage};

/// Detection settings for still source pictures (the reference's defaults).
const DET_SIZE: usize = 640;
const THRESHOLD: f32 = 0.5;
const NMS_THRESHOLD: f32 = 0.4;

/// The most pixels a picture may have: 8192 × 8192 (67 megapixels). A few hundred bytes of JPEG
/// header can claim 65535 × 65535 pixels, which would take gigabytes and minutes to decode, and
/// the detector looks at a picture at 640×640 anyway.
pub const MAX_PICTURE_PIXELS: u64 = 8192 * 8192;

/// Decodes a PNG or JPEG file into packed RGB, with an error that says what was wrong. Grey,
/// 16-bit and alpha pictures are converted (alpha is dropped, not composited).
pub fn load_rgb_image(path: &Path) -> Result<RgbImage, String> {
    // Opening a named pipe would wait for a writer forever.
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot open '{}': {e}", path.display()))?;
    if !metadata.is_file() {
        return Err(format!("cannot open '{}': not a regular file (a directory, device or pipe)", path.display()));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot open '{}': {e}", path.display()))?;
    decode_rgb_image(&bytes).map_err(|e| format!("'{}' {e}", path.display()))
}

/// Decodes the bytes of a PNG or JPEG file into packed RGB; the error reads after the file's name.
pub(crate) fn decode_rgb_image(bytes: &[u8]) -> Result<RgbImage, String> {
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| format!("cannot be read: {e}"))
    };
    // The size from the header first, so that a huge picture is refused before it is decoded.
    let (w, h) = reader()?.into_dimensions().map_err(|e| format!("is not a readable PNG or JPEG image: {e}"))?;
    if u64::from(w) * u64::from(h) > MAX_PICTURE_PIXELS {
        return Err(format!(
            "is {w}×{h} pixels, more than the {} megapixels a picture may have: scale it down (the face \
             detector looks at it at 640×640)",
            MAX_PICTURE_PIXELS / 1_000_000
        ));
    }
    let decoded = reader()?.decode().map_err(|e| format!("is not a readable PNG or JPEG image: {e}"))?.to_rgb8();
    let (w, h) = (decoded.width() as usize, decoded.height() as usize);
    RgbImage::from_raw(w, h, decoded.into_raw()).ok_or_else(|| "decoded to an inconsistent size".to_string())
}

/// The detector and recogniser that turn pictures into identities.
/// The detector and recogniser that turn pictures (and, for `target=reference`, frame faces
/// without embeddings) into identities. Pictures are read on the CPU, whatever the element's
/// backend: they arrive rarely and outside the frame path.
pub struct IdentityModels {
    detector: ScrfdDetector,
    recognizer: ArcFace,
    backend: Backend,
}

impl IdentityModels {
    pub fn open(detector: &Path, recognizer: &Path, options: &SessionOptions) -> Result<Self, RuntimeError> {
        Ok(IdentityModels {
            detector: ScrfdDetector::open(detector, "detector-model", options)?,
            recognizer: ArcFace::open(recognizer, "recognition-model", options)?,
            backend: Backend::cpu(),
        })
    }

    /// The sessions, for reporting which provider runs them.
    pub fn models(&self) -> [&ModelSession; 2] {
        [self.detector.model(), self.recognizer.model()]
    }

    /// The normalised embedding of the face with keypoints `kps` in `frame`.
    pub fn embed(&mut self, frame: &FrameView, kps: &[[f32; 2]; 5]) -> Result<Vec<f32>, String> {
        self.recognizer.embed(&mut self.backend, frame, kps)
    }

    /// The raw ArcFace embedding (before its L2 normalisation, see [`normalized_embedding`]) of
    /// the largest face in the picture at `path`.
    pub fn identity_of_image(&mut self, path: &Path) -> Result<Vec<f32>, String> {
        let image = load_rgb_image(path)?;
        let view = FrameView::from_rgb(&image);
        let faces = self.detector.detect(&mut self.backend, &view, DET_SIZE, THRESHOLD, NMS_THRESHOLD)?;
        let largest = faces
            .iter()
            .filter(|f| f.kps.is_some())
            .max_by(|a, b| a.area().total_cmp(&b.area()))
            .ok_or_else(|| format!("no face found in '{}'", path.display()))?;
        let kps = largest.kps.ok_or("the detector gives no keypoints")?;
        self.recognizer.embed_raw(&mut self.backend, &view, &kps).map(<[f32]>::to_vec)
    }
}

/// What a swapper takes as the identity of a source face, made from the face's raw ArcFace
/// embedding once per picture.
#[derive(Clone, Debug)]
pub enum SourceProjection {
    /// InsightFace's inswapper latent (Deep-Live-Cam): the normalised embedding times the model's
    /// `emap`, normalised again (see [`latent`]).
    InsightfaceLatent(Arc<[f32]>),
    /// The raw embedding itself: FaceFusion's swappers make their source tensor from it.
    RawEmbedding,
}

impl SourceProjection {
    /// The identity input of the raw embedding `raw`; `None` for a zero, non-finite or
    /// wrongly sized one.
    pub fn apply(&self, raw: &[f32]) -> Option<Vec<f32>> {
        match self {
            SourceProjection::InsightfaceLatent(emap) => latent(&normalized_embedding(raw).ok()?, emap),
            SourceProjection::RawEmbedding => {
                (raw.len() == EMBEDDING_LEN && raw.iter().all(|v| v.is_finite())).then(|| raw.to_vec())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_errors_name_the_file_and_cause() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.png");
        assert!(load_rgb_image(&missing).unwrap_err().contains("cannot open"));
        let text = dir.path().join("notes.jpg");
        std::fs::write(&text, "not a picture").unwrap();
        let err = load_rgb_image(&text).unwrap_err();
        assert!(err.contains("notes.jpg") && err.contains("not a readable PNG or JPEG"), "{err}");
    }

    #[test]
    fn pictures_too_large_are_refused_before_decoding() {
        // A baseline JPEG header claiming 65527×2552 pixels (167 megapixels) in 539 bytes: the
        // picture fuzz target's first timeout.
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fuzz-regressions/picture/jpeg-539-bytes-declares-167-megapixels"
        ))
        .unwrap();
        let err = decode_rgb_image(&bytes).unwrap_err();
        assert!(err.contains("65527×2552") && err.contains("67 megapixels"), "{err}");
    }

    #[test]
    fn png_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.png");
        let mut img = image::RgbImage::new(3, 2);
        img.put_pixel(2, 1, image::Rgb([10, 20, 30]));
        img.save(&path).unwrap();
        let loaded = load_rgb_image(&path).unwrap();
        assert_eq!((loaded.width, loaded.height), (3, 2));
        assert_eq!(loaded.pixel(2, 1), [10, 20, 30]);
    }
}
