// SPDX-License-Identifier: MPL-2.0
//! Similarity alignment (InsightFace `estimate_norm`) and 2×3 affine transforms.

/// A 2×3 affine transform, row-major: `x' = m[0]·x + m[1]·y + m[2]`, `y' = m[3]·x + m[4]·y + m[5]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine {
    pub m: [f64; 6],
}

impl Affine {
    pub const IDENTITY: Affine = Affine { m: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0] };

    #[inline]
    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        let m = &self.m;
        (m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5])
    }

    /// The inverse transform (OpenCV's `invertAffineTransform`); `None` when singular.
    pub fn invert(&self) -> Option<Affine> {
        let [a, b, c, d, e, f] = self.m;
        let det = a * e - b * d;
        if det.abs() < 1e-12 || !det.is_finite() {
            return None;
        }
        let (ia, ib, id, ie) = (e / det, -b / det, -d / det, a / det);
        Some(Affine { m: [ia, ib, -(ia * c + ib * f), id, ie, -(id * c + ie * f)] })
    }
}

/// InsightFace's ArcFace landmark template at 112 px (`arcface_dst`): eyes, nose, mouth corners.
pub const ARCFACE_112: [[f32; 2]; 5] =
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];

/// The FFHQ landmark template at 512 px used by GFPGAN-class enhancers.
pub const FFHQ_512: [[f32; 2]; 5] = [
    [192.98138, 239.94708],
    [318.90277, 240.19366],
    [256.63416, 314.01935],
    [201.26117, 371.41043],
    [313.08905, 371.15118],
];

/// The ArcFace template for a `size`-pixel crop by InsightFace's `estimate_norm` rule: multiples
/// of 112 scale the template, other sizes scale it as if it were a 128 template (so 128 gives the
/// inswapper crop, shifted right by 8 px).
///
/// InsightFace holds the template in float32 and numpy keeps the products in float32, so this
/// computes in f32 too and only widens the result.
pub fn template(size: usize) -> [[f64; 2]; 5] {
    let (ratio, diff_x) = if size.is_multiple_of(112) {
        (size as f32 / 112.0, 0.0)
    } else {
        let ratio = size as f32 / 128.0;
        (ratio, 8.0 * ratio)
    };
    ARCFACE_112.map(|[x, y]| [(x * ratio + diff_x) as f64, (y * ratio) as f64])
}

/// The FFHQ template scaled to a `size`-pixel crop (GPEN-BFR at 1024 / 2048).
pub fn ffhq_template(size: usize) -> [[f64; 2]; 5] {
    let ratio = size as f64 / 512.0;
    FFHQ_512.map(|[x, y]| [x as f64 * ratio, y as f64 * ratio])
}

/// The least-squares similarity (rotation, uniform scale, translation) mapping `src` onto `dst`,
/// as `skimage.transform.SimilarityTransform.estimate` (Umeyama 1991).
///
/// In 2-D the cross-covariance `A` splits into a rotation-scaling part `P = [p −q; q p]` and a
/// reflection part; Umeyama's SVD solution (with its det/rank handling, which always picks a
/// proper rotation) reduces to `scale·R = P / var(src)` in every case, i.e. the normal-equations
/// solution. `None` when the points are degenerate (coincident sources, or no rotation-scaling
/// component, where skimage returns NaN or a singular matrix).
pub fn umeyama(src: &[[f64; 2]; 5], dst: &[[f64; 2]; 5]) -> Option<Affine> {
    let n = src.len() as f64;
    let mean = |pts: &[[f64; 2]; 5]| {
        let (sx, sy) = pts.iter().fold((0.0, 0.0), |(ax, ay), p| (ax + p[0], ay + p[1]));
        (sx / n, sy / n)
    };
    let ((msx, msy), (mdx, mdy)) = (mean(src), mean(dst));
    // Sums of the rotation-invariant parts of A = Σ d·sᵀ and of |s|².
    let (mut p, mut q, mut var) = (0.0, 0.0, 0.0);
    for (s, d) in src.iter().zip(dst) {
        let (sx, sy, dx, dy) = (s[0] - msx, s[1] - msy, d[0] - mdx, d[1] - mdy);
        p += dx * sx + dy * sy;
        q += dy * sx - dx * sy;
        var += sx * sx + sy * sy;
    }
    let (a, b) = (p / var, q / var);
    let m = [a, -b, mdx - (a * msx - b * msy), b, a, mdy - (b * msx + a * msy)];
    let singular = a * a + b * b < 1e-24;
    (m.iter().all(|v| v.is_finite()) && !singular).then_some(Affine { m })
}

/// The transform from frame coordinates to a `size`-pixel aligned crop for five detected
/// landmarks (InsightFace `face_align.estimate_norm`); `None` for degenerate landmarks.
pub fn estimate_norm(kps: &[[f32; 2]; 5], size: usize) -> Option<Affine> {
    umeyama(&kps.map(|[x, y]| [x as f64, y as f64]), &template(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(a: &Affine, b: &[f64; 6], tol: f64) {
        for (x, y) in a.m.iter().zip(b) {
            assert!((x - y).abs() <= tol, "{:?} vs {b:?}", a.m);
        }
    }

    #[test]
    fn templates_match_the_contract() {
        let expect_128 =
            [[46.2946, 51.6963], [81.5318, 51.5014], [64.0252, 71.7366], [49.5493, 92.3655], [78.7299, 92.2041]];
        for (t, e) in template(128).iter().zip(expect_128) {
            assert!((t[0] - e[0]).abs() < 1e-4 && (t[1] - e[1]).abs() < 1e-4, "{t:?} vs {e:?}");
        }
        // 112 and 224 are multiples of 112: plain scaling, no shift.
        assert_eq!(template(112)[0], [38.2946f32 as f64, 51.6963f32 as f64]);
        assert_eq!(template(224)[4], [(70.7299f32 * 2.0) as f64, (92.2041f32 * 2.0) as f64]);
        // 256: ratio 2, shift 16.
        assert_eq!(template(256)[2], [(56.0252f32 * 2.0 + 16.0) as f64, (71.7366f32 * 2.0) as f64]);
        let f = ffhq_template(1024);
        assert!((f[1][0] - 637.80554).abs() < 1e-3 && (f[4][1] - 742.30236).abs() < 1e-3, "{f:?}");
    }

    #[test]
    fn template_to_itself_is_identity() {
        let t = template(112);
        let kps = t.map(|[x, y]| [x as f32, y as f32]);
        let m = estimate_norm(&kps, 112).expect("regular points");
        assert_close(&m, &Affine::IDENTITY.m, 1e-9);
    }

    #[test]
    fn recovers_a_known_similarity() {
        let (s, th) = (2.5f64, 30f64.to_radians());
        let truth = [s * th.cos(), -s * th.sin(), 17.0, s * th.sin(), s * th.cos(), -42.0];
        let src = [[10.0, 20.0], [55.0, 18.0], [31.0, 40.0], [14.0, 62.0], [50.0, 61.0]];
        let dst = src.map(|[x, y]| Affine { m: truth }.apply(x, y)).map(|(x, y)| [x, y]);
        assert_close(&umeyama(&src, &dst).expect("regular points"), &truth, 1e-9);
    }

    /// Least squares for `x' = a·x − b·y + tx`, `y' = b·x + a·y + ty` through the 4×4 normal
    /// equations, solved by Gaussian elimination with partial pivoting.
    fn normal_equations(src: &[[f64; 2]; 5], dst: &[[f64; 2]; 5]) -> [f64; 6] {
        let mut ata = [[0.0f64; 5]; 4];
        for (s, d) in src.iter().zip(dst) {
            let rows = [([s[0], -s[1], 1.0, 0.0], d[0]), ([s[1], s[0], 0.0, 1.0], d[1])];
            for (r, v) in rows {
                for i in 0..4 {
                    for j in 0..4 {
                        ata[i][j] += r[i] * r[j];
                    }
                    ata[i][4] += r[i] * v;
                }
            }
        }
        for col in 0..4 {
            let pivot = (col..4).max_by(|&i, &j| ata[i][col].abs().total_cmp(&ata[j][col].abs())).expect("rows");
            ata.swap(col, pivot);
            let pivot_row = ata[col];
            for (r, row) in ata.iter_mut().enumerate() {
                if r != col {
                    let k = row[col] / pivot_row[col];
                    for (v, p) in row.iter_mut().zip(pivot_row).skip(col) {
                        *v -= k * p;
                    }
                }
            }
        }
        let [a, b, tx, ty] = std::array::from_fn(|i| ata[i][4] / ata[i][i]);
        [a, -b, tx, b, a, ty]
    }

    fn cross_covariance_det(src: &[[f64; 2]; 5], dst: &[[f64; 2]; 5]) -> f64 {
        let mean = |p: &[[f64; 2]; 5], i: usize| p.iter().map(|v| v[i]).sum::<f64>() / 5.0;
        let cov = |i: usize, j: usize| {
            src.iter().zip(dst).map(|(s, d)| (d[i] - mean(dst, i)) * (s[j] - mean(src, j))).sum::<f64>()
        };
        cov(0, 0) * cov(1, 1) - cov(0, 1) * cov(1, 0)
    }

    #[test]
    fn noisy_points_match_least_squares() {
        let kps: [[f32; 2]; 5] = [[412.3, 288.1], [498.7, 281.9], [457.0, 339.4], [425.8, 387.2], [491.1, 383.0]];
        let src = kps.map(|[x, y]| [x as f64, y as f64]);
        let expect = normal_equations(&src, &template(128));
        assert_close(&estimate_norm(&kps, 128).expect("regular points"), &expect, 1e-9);

        // A mirrored face (eyes and mouth corners swapped) gives det(A) < 0: Umeyama still
        // returns the best proper rotation, which is the normal-equations solution.
        let mirrored = [src[1], src[0], src[2], src[4], src[3]];
        assert!(cross_covariance_det(&mirrored, &template(112)) < 0.0, "not the reflection case");
        let expect = normal_equations(&mirrored, &template(112));
        let m = umeyama(&mirrored, &template(112)).expect("regular points");
        assert_close(&m, &expect, 1e-9);
        assert!(m.m[0] * m.m[4] - m.m[1] * m.m[3] > 0.0);
    }

    #[test]
    fn degenerate_points_give_none() {
        assert!(estimate_norm(&[[5.0, 5.0]; 5], 112).is_none());
        // dst mirrors a square (equal spread in x and y, no x–y correlation): the cross-covariance
        // is a pure reflection, with no rotation-scaling component at all.
        let src = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5]];
        let dst = src.map(|[x, y]| [-x, y]);
        assert!(umeyama(&src, &dst).is_none());
    }

    #[test]
    fn invert_round_trips() {
        let m = estimate_norm(&[[412.3, 288.1], [498.7, 281.9], [457.0, 339.4], [425.8, 387.2], [491.1, 383.0]], 112)
            .expect("regular points");
        let inv = m.invert().expect("invertible");
        for (x, y) in [(0.0, 0.0), (100.0, -3.5), (1919.0, 1079.0)] {
            let (u, v) = m.apply(x, y);
            let (bx, by) = inv.apply(u, v);
            assert!((bx - x).abs() < 1e-9 && (by - y).abs() < 1e-9);
        }
    }
}
