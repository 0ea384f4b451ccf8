// SPDX-License-Identifier: MPL-2.0
//! [`FaceFusionSwapper::swap_face`] on the graph backend: the same steps and numerics as the CPU
//! path, with the crop, the tiles, the swapped crop, the masks and the paste where the models
//! are. The face's frame rectangle goes up once and comes back pasted. The box mask is uploaded
//! once per size and setting, a track's area mask (drawn from landmarks on the host) when it was
//! drawn again; the occlusion and region masks are made on the device around their models.

use std::collections::HashMap;
use std::time::Instant;

use ort::value::DynTensor;

use super::{BoostGeometry, FaceFusionSwapper};
use crate::backend::graph::facefusion::TileFormat;
use crate::backend::{Backend, GraphBackend};
use crate::face::Face;
use crate::models::parser::Parser;
use crate::models::swapper::tiles::{tile_format, tiles_output};
use crate::vision::FrameViewMut;
use crate::vision::box_mask::BoxMaskSettings;

/// What the graph path keeps between faces: the masks and the crop in the models' memory, and
/// the tile format of the last boost size.
#[derive(Default)]
pub(super) struct DeviceState {
    /// The box mask and the size and setting it was made for.
    box_mask: Option<DynTensor>,
    box_key: Option<(usize, BoxMaskSettings)>,
    occlusion: Option<DynTensor>,
    /// Each track's area mask, uploaded when its [`AreaMaskCache`](crate::vision::masks::AreaMaskCache)
    /// drew it again.
    areas: HashMap<u64, Option<DynTensor>>,
    region: Option<DynTensor>,
    /// The swapped float crop.
    crop: Option<DynTensor>,
    format: Option<TileFormat>,
}

/// The graph backend in `pixels` (the path runs only when it is one).
fn graphs(pixels: &mut Backend) -> Result<&mut GraphBackend, String> {
    match pixels {
        Backend::Graph(graphs) => Ok(graphs),
        Backend::Cpu(_) => Err("the FaceFusion graphs need the graph backend".to_string()),
    }
}

impl DeviceState {
    /// Forgets the area masks of tracks that are gone.
    pub(super) fn begin_frame(&mut self, faces: &[Face]) {
        self.areas.retain(|id, _| faces.iter().any(|f| f.track_id == *id));
    }
}

impl FaceFusionSwapper {
    /// [`FaceFusionSwapper::swap_face`] with the pixel steps on the graph backend.
    pub(super) fn swap_face_on_graphs(
        &mut self,
        frame: &mut FrameViewMut,
        face: &Face,
        embedding: &[f32],
        opacity: f32,
    ) -> Result<(), String> {
        let start = Instant::now();
        let params = self.params;
        let family = self.family();
        let BoostGeometry { m, side, size, factor } = self.geometry(face)?;
        let kinds = params.masks.or_box();
        let Some(place) = graphs(&mut self.pixels)?.load_boost_face(&frame.as_view(), &m, side)? else { return Ok(()) };
        let start = self.times.lap(0, start);

        // Masks that need no pixels: the box (per size and setting) and the area (per track).
        if kinds.box_mask && self.device.box_key != Some((side, params.box_mask)) {
            let weights = self.box_mask(side, params.box_mask).to_vec();
            graphs(&mut self.pixels)?.upload_mask(&weights, side, &mut self.device.box_mask)?;
            self.device.box_key = Some((side, params.box_mask));
        }
        if kinds.area {
            let points = self.landmarks_68(face)?;
            let in_crop = points.map(|[x, y]| {
                let (u, v) = m.apply(x as f64, y as f64);
                [u as f32, v as f32]
            });
            let cache = self.area_masks.entry(face.track_id).or_default();
            let (weights, redrawn) = cache.mask_redrawn(side, &in_crop, &self.masks.areas);
            let on_device = self.device.areas.entry(face.track_id).or_default();
            if redrawn || on_device.is_none() {
                graphs(&mut self.pixels)?.upload_mask(weights, side, on_device)?;
            }
        }
        let source = self.source_index(embedding)?;
        let start = self.times.lap(2, start);

        let FaceFusionSwapper { swapper, pixels, device, masks, sources, times, .. } = self;
        let batched = swapper.batched();
        let inputs = swapper.device_inputs(pixels, factor * factor)?;
        let element = *inputs.first().ok_or("no swapper inputs")?.data_type();
        // The tiles graph also makes the occluder's input from the crop before the swap.
        let occluder_input = match masks.occluder.as_mut().filter(|_| kinds.occlusion) {
            Some(occluder) => Some(occluder.device_input(pixels)?),
            None if kinds.occlusion => return Err("mask-types=occlusion needs 'occluder-model'".to_string()),
            None => None,
        };
        let occluder_element = occluder_input.as_ref().map(|t| *t.data_type());
        if device.format.as_ref().is_none_or(|f| {
            f.factor != factor || f.size != size || f.element != element || f.occluder != occluder_element
        }) {
            device.format =
                Some(TileFormat { occluder: occluder_element, ..tile_format(family, factor, batched, element) });
        }
        let format = device.format.as_ref().ok_or("no swapper inputs")?;
        graphs(pixels)?.boost_tiles_in(&place, format, inputs, None, occluder_input)?;
        if let Some(occluder) = masks.occluder.as_mut().filter(|_| kinds.occlusion) {
            let output = occluder.run_device(pixels)?;
            graphs(pixels)?.occlusion_mask(output, side, &mut device.occlusion)?;
        }
        let start = times.lap(1, start);
        let outputs = swapper.run_device_tiles(pixels, &sources[source].tensor)?;
        graphs(pixels)?.boost_tiles_out(outputs, (size, factor), tiles_output(family), &mut device.crop)?;
        let start = times.lap(3, start);

        let crop = device.crop.as_ref().ok_or("the swapped crop is missing")?;
        if kinds.region {
            let parser = masks.parser.as_mut().ok_or("mask-types=region needs 'parser-model'")?;
            let input = parser.device_input(pixels)?;
            graphs(pixels)?.parser_input(crop, input)?;
            let logits = parser.run_device(pixels)?;
            graphs(pixels)?.region_mask(logits, side, &Parser::selected_classes(&masks.regions), &mut device.region)?;
        }
        let start = times.lap(4, start);

        let chosen = [
            (kinds.box_mask, &device.box_mask),
            (kinds.occlusion, &device.occlusion),
            (kinds.area, device.areas.get(&face.track_id).unwrap_or(&None)),
            (kinds.region, &device.region),
        ];
        let layers = chosen
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, mask)| mask.as_ref().ok_or("a mask was not made"))
            .collect::<Result<Vec<&DynTensor>, _>>()?;
        graphs(pixels)?.boost_paste(frame, &place, crop, &layers, opacity)?;
        times.lap(5, start);
        Ok(())
    }
}
