// SPDX-License-Identifier: MPL-2.0
//! FaceFusion's five-point alignment templates (`face_helper.py`, 3.8.1), on the unit square and
//! under FaceFusion's names. A crop of side `size` aligns a face to the template times `size`
//! (FaceFusion multiplies by the crop size, so with pixel boost the same unit template is scaled
//! to the boost size).
//!
//! FaceFusion holds these as float64 arrays; so does this table. InsightFace's templates (the
//! Deep-Live-Cam path) stay in [`super::align`]: `arcface_112_v2 × 112` equals its `arcface_dst`
//! and `arcface_128 × 128` its 128-px inswapper crop, to the digits printed here.

/// A named five-point template: left eye, right eye, nose tip, left and right mouth corner, as
/// `(x, y)` fractions of the crop side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Template {
    pub name: &'static str,
    pub points: [[f64; 2]; 5],
}

impl Template {
    /// The template's points in a `size`-pixel crop.
    pub fn scaled(&self, size: usize) -> [[f64; 2]; 5] {
        let side = size as f64;
        self.points.map(|[x, y]| [x * side, y * side])
    }
}

pub const ARCFACE_112_V1: Template = Template {
    name: "arcface_112_v1",
    points: [
        [0.35473214, 0.45658929],
        [0.64526786, 0.45658929],
        [0.50000000, 0.61154464],
        [0.37913393, 0.77687500],
        [0.62086607, 0.77687500],
    ],
};

pub const ARCFACE_112_V2: Template = Template {
    name: "arcface_112_v2",
    points: [
        [0.34191607, 0.46157411],
        [0.65653393, 0.45983393],
        [0.50022500, 0.64050536],
        [0.37097589, 0.82469196],
        [0.63151696, 0.82325089],
    ],
};

pub const ARCFACE_128: Template = Template {
    name: "arcface_128",
    points: [
        [0.36167656, 0.40387734],
        [0.63696719, 0.40235469],
        [0.50019687, 0.56044219],
        [0.38710391, 0.72160547],
        [0.61507734, 0.72034453],
    ],
};

pub const DFL_WHOLE_FACE: Template = Template {
    name: "dfl_whole_face",
    points: [
        [0.35342266, 0.39285716],
        [0.62797622, 0.39285716],
        [0.48660713, 0.54017860],
        [0.38839287, 0.68750011],
        [0.59821427, 0.68750011],
    ],
};

pub const FFHQ_512: Template = Template {
    name: "ffhq_512",
    points: [
        [0.37691676, 0.46864664],
        [0.62285697, 0.46912813],
        [0.50123859, 0.61331904],
        [0.39308822, 0.72541100],
        [0.61150205, 0.72490465],
    ],
};

pub const MTCNN_512: Template = Template {
    name: "mtcnn_512",
    points: [
        [0.36562865, 0.46733799],
        [0.63305391, 0.46585885],
        [0.50019127, 0.61942959],
        [0.39032951, 0.77598822],
        [0.61178945, 0.77476328],
    ],
};

pub const STYLEGANEX_384: Template = Template {
    name: "styleganex_384",
    points: [
        [0.42353745, 0.52289879],
        [0.57725008, 0.52319972],
        [0.50123859, 0.61331904],
        [0.43364461, 0.68337652],
        [0.57015325, 0.68306005],
    ],
};

/// Every template, for lookup by name.
pub const TEMPLATES: [&Template; 7] =
    [&ARCFACE_112_V1, &ARCFACE_112_V2, &ARCFACE_128, &DFL_WHOLE_FACE, &FFHQ_512, &MTCNN_512, &STYLEGANEX_384];

/// The template FaceFusion calls `name`.
pub fn template_named(name: &str) -> Option<&'static Template> {
    TEMPLATES.into_iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::align::{ARCFACE_112, FFHQ_512 as FFHQ_512_PIXELS};

    fn assert_points_close(a: &[[f64; 2]; 5], b: &[[f64; 2]; 5], tol: f64) {
        for (p, q) in a.iter().zip(b) {
            assert!((p[0] - q[0]).abs() <= tol && (p[1] - q[1]).abs() <= tol, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn arcface_templates_match_insightface_at_their_sizes() {
        // arcface_112_v2 × 112 is InsightFace's arcface_dst; arcface_128 × 128 is that shifted
        // right by 8 px (its 128-px inswapper crop). Both to the 4 decimals InsightFace prints.
        let dst = ARCFACE_112.map(|[x, y]| [x as f64, y as f64]);
        assert_points_close(&ARCFACE_112_V2.scaled(112), &dst, 6e-5);
        assert_points_close(&ARCFACE_128.scaled(128), &dst.map(|[x, y]| [x + 8.0, y]), 6e-5);
        // ffhq_512 × 512 is the GFPGAN template the enhancers use (FaceFusion's 8 decimals of
        // the unit square leave up to 6.2e-5 px at 512).
        let ffhq = FFHQ_512_PIXELS.map(|[x, y]| [x as f64, y as f64]);
        assert_points_close(&FFHQ_512.scaled(512), &ffhq, 1e-4);
    }

    #[test]
    fn scaling_is_linear_in_the_crop_side() {
        let at_256 = ARCFACE_112_V1.scaled(256);
        assert_eq!(at_256[2], [128.0, 0.61154464 * 256.0]);
        let at_1024 = MTCNN_512.scaled(1024);
        assert_points_close(&at_1024, &MTCNN_512.scaled(256).map(|[x, y]| [x * 4.0, y * 4.0]), 1e-9);
    }

    #[test]
    fn templates_are_found_by_name() {
        for t in TEMPLATES {
            assert_eq!(template_named(t.name), Some(t));
        }
        assert!(template_named("arcface_112").is_none());
    }
}
