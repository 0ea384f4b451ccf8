// SPDX-License-Identifier: MPL-2.0
//! Which faces of a frame get swapped, and to which identity: the `target`, `many-faces`,
//! `reference` and `face-map` rules, as plain functions over the faces of a frame.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::face::Face;

/// Deep-Live-Cam's default for "same person": squared L2 distance of normalised embeddings.
pub const DEFAULT_REFERENCE_DISTANCE: f64 = 0.85;

/// Which face(s) of a frame to swap when no face map is used.
#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, Default)]
pub enum Target {
    /// The face with the largest box.
    #[default]
    Largest,
    /// The face furthest left (Deep-Live-Cam's rule).
    LeftMost,
    /// The face the detector is surest of.
    BestScore,
    /// Faces whose embedding lies within the reference distance of the reference picture's.
    Reference,
}

/// Squared L2 distance between two normalised embeddings (0 = same, 4 = opposite).
pub fn embedding_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Indices of the faces to swap under `mode` (without a face map). For `Reference`,
/// `embedding_of(i)` gives face i's embedding; faces farther than `max_distance` are skipped
/// and the closest comes first.
pub fn select_targets(
    faces: &[Face],
    mode: Target,
    many_faces: bool,
    reference: Option<&[f32]>,
    max_distance: f32,
    mut embedding_of: impl FnMut(usize) -> Option<Arc<[f32]>>,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..faces.len()).collect();
    match mode {
        Target::Largest => order.sort_by(|&a, &b| faces[b].area().total_cmp(&faces[a].area())),
        Target::LeftMost => order.sort_by(|&a, &b| faces[a].bbox[0].total_cmp(&faces[b].bbox[0])),
        Target::BestScore => order.sort_by(|&a, &b| faces[b].score.total_cmp(&faces[a].score)),
        Target::Reference => {
            let Some(reference) = reference else { return Vec::new() };
            let mut matches: Vec<(f32, usize)> = order
                .into_iter()
                .filter_map(|i| embedding_of(i).map(|e| (embedding_distance(&e, reference), i)))
                .filter(|(d, _)| *d <= max_distance)
                .collect();
            matches.sort_by(|a, b| a.0.total_cmp(&b.0));
            order = matches.into_iter().map(|(_, i)| i).collect();
        }
    }
    if !many_faces {
        order.truncate(1);
    }
    order
}

/// The identities in use: the swapper latent of the source picture, the embedding of the
/// reference picture, and the face map's (reference embedding, source latent) pairs. Replaced
/// whole when a picture changes, so that the streaming thread only clones `Arc`s.
#[derive(Debug, Default, Clone)]
pub struct Identities {
    pub source: Option<Arc<[f32]>>,
    pub reference: Option<Arc<[f32]>>,
    pub face_map: Vec<FaceMapIdentity>,
}

/// A face-map pair: the reference person's embedding and the latent of the source to give them.
pub type FaceMapIdentity = (Arc<[f32]>, Arc<[f32]>);

/// The selection knobs of one frame.
#[derive(Debug, Clone, Copy)]
pub struct Selection {
    pub target: Target,
    pub many_faces: bool,
    /// Largest squared embedding distance at which a face counts as a reference person.
    pub reference_distance: f32,
}

impl Identities {
    /// Whether choosing faces needs their embeddings (reference target or face map).
    pub fn needs_embeddings(&self, selection: &Selection) -> bool {
        !self.face_map.is_empty() || selection.target == Target::Reference
    }

    /// The faces to swap on this frame, each with the latent to give it. `embedding_of(i)` gives
    /// face i's embedding where one is known.
    pub fn plan(
        &self,
        faces: &[Face],
        selection: &Selection,
        embedding_of: impl FnMut(usize) -> Option<Arc<[f32]>>,
    ) -> Vec<(usize, Arc<[f32]>)> {
        if !self.face_map.is_empty() {
            let references: Vec<Arc<[f32]>> = self.face_map.iter().map(|(r, _)| r.clone()).collect();
            return match_face_map(faces.len(), &references, selection.reference_distance, embedding_of)
                .into_iter()
                .map(|(face, entry)| (face, self.face_map[entry].1.clone()))
                .collect();
        }
        let Some(source) = &self.source else { return Vec::new() };
        select_targets(
            faces,
            selection.target,
            selection.many_faces,
            self.reference.as_deref(),
            selection.reference_distance,
            embedding_of,
        )
        .into_iter()
        .map(|i| (i, source.clone()))
        .collect()
    }
}

/// One face-map entry: faces like `reference` become `source`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceMapEntry {
    pub reference: PathBuf,
    pub source: PathBuf,
}

/// Parses a face-map file: one `reference-image = source-image` pair per line, `#` starts a
/// comment, relative paths are relative to the map file's folder.
pub fn parse_face_map(text: &str, base: &Path) -> Result<Vec<FaceMapEntry>, String> {
    let mut entries = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let Some((reference, source)) = line.split_once('=') else {
            return Err(format!("line {}: expected 'reference-image = source-image', found '{line}'", number + 1));
        };
        let (reference, source) = (reference.trim(), source.trim());
        if reference.is_empty() || source.is_empty() {
            return Err(format!("line {}: both a reference and a source image are needed, found '{line}'", number + 1));
        }
        entries.push(FaceMapEntry { reference: base.join(reference), source: base.join(source) });
    }
    if entries.is_empty() {
        return Err("the face map has no 'reference-image = source-image' lines".to_string());
    }
    Ok(entries)
}

/// For each face (index), the map entry whose reference is closest within `max_distance`.
pub fn match_face_map(
    faces: usize,
    references: &[Arc<[f32]>],
    max_distance: f32,
    mut embedding_of: impl FnMut(usize) -> Option<Arc<[f32]>>,
) -> Vec<(usize, usize)> {
    (0..faces)
        .filter_map(|i| {
            let e = embedding_of(i)?;
            references
                .iter()
                .enumerate()
                .map(|(k, r)| (embedding_distance(&e, r), k))
                .filter(|(d, _)| *d <= max_distance)
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, k)| (i, k))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::FaceFlags;

    fn face(x: f32, size: f32, score: f32) -> Face {
        Face {
            bbox: [x, 0.0, x + size, size],
            score,
            landmarks: [[0.0; 2]; 5],
            landmarks_106: None,
            embedding: None,
            track_id: 0,
            flags: FaceFlags::INFERRED,
        }
    }

    fn unit(axis: usize) -> Arc<[f32]> {
        let mut v = vec![0.0f32; 4];
        v[axis] = 1.0;
        v.into()
    }

    #[test]
    fn target_modes_pick_as_documented() {
        let faces = [face(300.0, 50.0, 0.7), face(10.0, 40.0, 0.6), face(150.0, 90.0, 0.95)];
        let none = |_| None;
        assert_eq!(select_targets(&faces, Target::Largest, false, None, 0.85, none), vec![2]);
        assert_eq!(select_targets(&faces, Target::LeftMost, false, None, 0.85, none), vec![1]);
        assert_eq!(select_targets(&faces, Target::BestScore, false, None, 0.85, none), vec![2]);
        assert_eq!(select_targets(&faces, Target::Largest, true, None, 0.85, none), vec![2, 0, 1]);
    }

    #[test]
    fn reference_mode_keeps_close_faces_only() {
        let faces = [face(0.0, 10.0, 0.9), face(50.0, 10.0, 0.9), face(90.0, 10.0, 0.9)];
        let embeddings = [unit(0), unit(1), unit(0)];
        // Distance between different unit axes is 2 (> 0.85); same axis 0.
        let pick =
            select_targets(&faces, Target::Reference, true, Some(&unit(0)), 0.85, |i| Some(embeddings[i].clone()));
        assert_eq!(pick, vec![0, 2]);
        let pick =
            select_targets(&faces, Target::Reference, false, Some(&unit(1)), 0.85, |i| Some(embeddings[i].clone()));
        assert_eq!(pick, vec![1]);
        assert!(
            select_targets(&faces, Target::Reference, true, None, 0.85, |i| Some(embeddings[i].clone())).is_empty()
        );
    }

    #[test]
    fn face_map_parses_and_matches() {
        let map =
            parse_face_map("# people\nalice.jpg = bob.png\n  carol.jpg=dave.jpg # second\n\n", Path::new("/maps"))
                .unwrap();
        assert_eq!(map[0], FaceMapEntry { reference: "/maps/alice.jpg".into(), source: "/maps/bob.png".into() });
        assert_eq!(map[1].source, PathBuf::from("/maps/dave.jpg"));
        assert!(parse_face_map("alice.jpg bob.jpg", Path::new("/")).unwrap_err().contains("line 1"));
        assert!(parse_face_map("# nothing\n", Path::new("/")).unwrap_err().contains("no 'reference-image"));

        let references = [unit(0), unit(1)];
        let embeddings = [unit(1), unit(2), unit(0)];
        let matched = match_face_map(3, &references, 0.85, |i| Some(embeddings[i].clone()));
        assert_eq!(matched, vec![(0, 1), (2, 0)]);
    }
}
