// SPDX-License-Identifier: MPL-2.0
//! Face tracking between detections: greedy IoU matching keeps a stable id per face, carries
//! faces across frames the detector skips (`inference-interval`) or misses briefly, and
//! optionally damps landmark jitter.

use crate::face::{Face, FaceFlags};

/// Minimum IoU for a detection to continue an existing track.
pub const MATCH_IOU: f32 = 0.3;

/// IoU of two `[x1, y1, x2, y2]` boxes (continuous convention).
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union =
        (a[2] - a[0]).max(0.0) * (a[3] - a[1]).max(0.0) + (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

struct Track {
    face: Face,
    /// Consecutive detector runs that did not find this face.
    missed: u32,
}

pub struct Tracker {
    tracks: Vec<Track>,
    next_id: u64,
    /// How many detector runs in a row a face may be missing before its track ends.
    max_missed: u32,
    /// 0 = off; otherwise the weight of the previous position in an exponential moving average.
    smoothing: f32,
}

impl Tracker {
    pub fn new(max_missed: u32, smoothing: f32) -> Self {
        Tracker { tracks: Vec::new(), next_id: 1, max_missed, smoothing: smoothing.clamp(0.0, 0.99) }
    }

    pub fn set_smoothing(&mut self, smoothing: f32) {
        self.smoothing = smoothing.clamp(0.0, 0.99);
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    pub fn reset(&mut self) {
        self.tracks.clear();
    }

    /// Takes the detector's faces for this frame and returns the tracked faces: matched and new
    /// ones flagged inferred, recently missed ones carried forward flagged tracked.
    pub fn update(&mut self, detections: Vec<Face>) -> Vec<Face> {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (t, track) in self.tracks.iter().enumerate() {
            for (d, det) in detections.iter().enumerate() {
                let overlap = iou(&track.face.bbox, &det.bbox);
                if overlap >= MATCH_IOU {
                    pairs.push((overlap, t, d));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_of_detection = vec![None; detections.len()];
        let mut matched_track = vec![false; self.tracks.len()];
        for (_, t, d) in pairs {
            if !matched_track[t] && track_of_detection[d].is_none() {
                matched_track[t] = true;
                track_of_detection[d] = Some(t);
            }
        }

        let mut next = Vec::with_capacity(self.tracks.len() + detections.len());
        let mut previous: Vec<Option<Track>> = self.tracks.drain(..).map(Some).collect();
        for (d, mut det) in detections.into_iter().enumerate() {
            det.flags.insert(FaceFlags::INFERRED);
            det.flags.remove(FaceFlags::TRACKED);
            match track_of_detection[d].and_then(|t| previous[t].take()) {
                Some(track) => {
                    det.track_id = track.face.track_id;
                    if self.smoothing > 0.0 {
                        smooth(&mut det, &track.face, self.smoothing);
                    }
                }
                None => {
                    det.track_id = self.next_id;
                    self.next_id += 1;
                }
            }
            next.push(Track { face: det, missed: 0 });
        }
        for mut track in previous.into_iter().flatten() {
            track.missed += 1;
            if track.missed <= self.max_missed {
                track.face.flags.remove(FaceFlags::INFERRED);
                track.face.flags.insert(FaceFlags::TRACKED);
                next.push(track);
            }
        }
        self.tracks = next;
        self.current()
    }

    /// The faces on a frame where the detector did not run: every live track, flagged tracked.
    pub fn carry(&mut self) -> Vec<Face> {
        for track in &mut self.tracks {
            track.face.flags.remove(FaceFlags::INFERRED);
            track.face.flags.insert(FaceFlags::TRACKED);
        }
        self.current()
    }

    fn current(&self) -> Vec<Face> {
        self.tracks.iter().map(|t| t.face.clone()).collect()
    }
}

fn smooth(det: &mut Face, previous: &Face, weight: f32) {
    let mix = |new: f32, old: f32| weight * old + (1.0 - weight) * new;
    for (n, o) in det.bbox.iter_mut().zip(previous.bbox) {
        *n = mix(*n, o);
    }
    for (n, o) in det.landmarks.iter_mut().zip(previous.landmarks) {
        *n = [mix(n[0], o[0]), mix(n[1], o[1])];
    }
    if let (Some(new), Some(old)) = (&det.landmarks_106, &previous.landmarks_106)
        && new.len() == old.len()
    {
        det.landmarks_106 = Some(new.iter().zip(old.iter()).map(|(n, o)| [mix(n[0], o[0]), mix(n[1], o[1])]).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32) -> Face {
        Face {
            bbox: [x, 0.0, x + 100.0, 100.0],
            score: 0.9,
            landmarks: [[x + 30.0, 40.0]; 5],
            landmarks_106: None,
            embedding: None,
            track_id: 0,
            flags: FaceFlags::empty(),
        }
    }

    #[test]
    fn iou_by_hand() {
        // Overlap 50×100 = 5000; union 10000 + 10000 − 5000 = 15000.
        assert!((iou(&[0.0, 0.0, 100.0, 100.0], &[50.0, 0.0, 150.0, 100.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[2.0, 2.0, 3.0, 3.0]), 0.0);
    }

    #[test]
    fn ids_stay_stable_and_misses_are_bridged() {
        let mut tracker = Tracker::new(2, 0.0);
        let first = tracker.update(vec![face(0.0), face(500.0)]);
        let ids: Vec<u64> = first.iter().map(|f| f.track_id).collect();
        assert_eq!(ids, vec![1, 2]);
        assert!(first.iter().all(|f| f.flags.contains(FaceFlags::INFERRED)));

        // Both moved a little; detection order swapped.
        let second = tracker.update(vec![face(510.0), face(10.0)]);
        assert_eq!(second.iter().map(|f| f.track_id).collect::<Vec<_>>(), vec![2, 1]);

        // Face 1 missed twice: carried, flagged tracked; a third miss ends it.
        for _ in 0..2 {
            let faces = tracker.update(vec![face(520.0)]);
            assert_eq!(faces.len(), 2);
            let carried = faces.iter().find(|f| f.track_id == 1).unwrap();
            assert!(carried.flags.contains(FaceFlags::TRACKED) && !carried.flags.contains(FaceFlags::INFERRED));
        }
        let faces = tracker.update(vec![face(520.0)]);
        assert_eq!(faces.iter().map(|f| f.track_id).collect::<Vec<_>>(), vec![2]);

        // A face that reappears far away starts a new track.
        let faces = tracker.update(vec![face(520.0), face(-300.0)]);
        assert_eq!(faces[1].track_id, 3);
    }

    #[test]
    fn carry_keeps_faces_between_inferences() {
        let mut tracker = Tracker::new(2, 0.0);
        tracker.update(vec![face(0.0)]);
        let carried = tracker.carry();
        assert_eq!(carried.len(), 1);
        assert_eq!(carried[0].track_id, 1);
        assert!(carried[0].flags.contains(FaceFlags::TRACKED));
    }

    #[test]
    fn smoothing_mixes_positions() {
        let mut tracker = Tracker::new(2, 0.5);
        tracker.update(vec![face(0.0)]);
        let faces = tracker.update(vec![face(20.0)]);
        // 0.5 · 0 + 0.5 · 20 = 10.
        assert_eq!(faces[0].bbox[0], 10.0);
        assert_eq!(faces[0].landmarks[0][0], 40.0);
    }
}
