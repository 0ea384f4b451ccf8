// SPDX-License-Identifier: MPL-2.0
//! [`FaceFusionSwapper::swap_face`] on the graph backend: the same steps and numerics as the CPU
//! path, with the crop, the tiles, the swapped crop, the masks and the paste where the models
//! are. The face's frame rectangle goes up once and comes back pasted. The box mask is uploaded
//! once per size and setting, the area mask per face; the occlusion and region masks are made on
//! the host from a copy of the crop and uploaded.

use std::time::Instant;

use ort::value::DynTensor;

use super::{FaceFusionSwapper, MaskKinds, boost_size};
use crate::backend::Backend;
use crate::backend::graph::facefusion::TileFormat;
use crate::face::Face;
use crate::models::swapper::tiles::{tile_format, tiles_output};
use crate::vision::align::umeyama;
use crate::vision::box_mask::BoxMaskSettings;
use crate::vision::masks::area_mask;
use crate::vision::{Affine, FrameViewMut, RgbImage};

/// What the graph path keeps between faces: the masks and the crop in the models' memory, the
/// tile format of the last boost size, host copies for the masks made on the host.
#[derive(Default)]
pub(super) struct DeviceState {
    /// The box mask and the size and setting it was made for.
    box_mask: Option<DynTensor>,
    box_key: Option<(usize, BoxMaskSettings)>,
    occlusion: Option<DynTensor>,
    area: Option<DynTensor>,
    region: Option<DynTensor>,
    /// The swapped float crop.
    crop: Option<DynTensor>,
    format: Option<TileFormat>,
    /// The 8-bit crop and the swapped float crop on the host, for the occluder and the parser.
    host_crop: RgbImage,
    host_swapped: Vec<f32>,
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
        let kps = face.landmarks.map(|[x, y]| [x as f64, y as f64]);
        let unit = umeyama(&kps, &family.template.points).ok_or("degenerate face landmarks")?;
        let side = boost_size(family, params.pixel_boost, &unit)?;
        let m = Affine { m: unit.m.map(|v| v * side as f64) };
        let (size, factor) = (family.size, side / family.size);
        let kinds = if params.masks.is_empty() { MaskKinds { box_mask: true, ..params.masks } } else { params.masks };
        let Backend::Graph(graphs) = &mut self.pixels else {
            return Err("the FaceFusion graphs need the graph backend".to_string());
        };
        let Some(place) = graphs.load_boost_face(&frame.as_view(), &m, side)? else { return Ok(()) };
        let start = self.times.lap(0, start);

        // Masks that need no pixels: the box (per size and setting) and the areas (per face).
        if kinds.box_mask && self.device.box_key != Some((side, params.box_mask)) {
            let weights = self.box_mask(side, params.box_mask).to_vec();
            let Backend::Graph(graphs) = &mut self.pixels else { return Err("no graph backend".to_string()) };
            graphs.upload_mask(&weights, side, &mut self.device.box_mask)?;
            self.device.box_key = Some((side, params.box_mask));
        }
        if kinds.area {
            let points = self.landmarks_68(face)?;
            let in_crop = points.map(|[x, y]| {
                let (u, v) = m.apply(x as f64, y as f64);
                [u as f32, v as f32]
            });
            let weights = area_mask(side, &in_crop, &self.masks.areas);
            let Backend::Graph(graphs) = &mut self.pixels else { return Err("no graph backend".to_string()) };
            graphs.upload_mask(&weights, side, &mut self.device.area)?;
        }
        let source = self.source_index(embedding)?;
        let start = self.times.lap(2, start);

        let FaceFusionSwapper { swapper, pixels, device, masks, sources, times, .. } = self;
        let batched = swapper.batched();
        let inputs = swapper.device_inputs(pixels, factor * factor)?;
        let Backend::Graph(graphs) = pixels else { return Err("no graph backend".to_string()) };
        let element = *inputs.first().ok_or("no swapper inputs")?.data_type();
        if device.format.as_ref().is_none_or(|f| f.factor != factor || f.size != size || f.element != element) {
            device.format = Some(tile_format(family, factor, batched, element));
        }
        let format = device.format.as_ref().ok_or("no swapper inputs")?;
        // The occluder reads the crop before the swap, on the host.
        let host_crop = kinds.occlusion.then_some(&mut device.host_crop);
        graphs.boost_tiles_in(&place, format, inputs, host_crop)?;
        if kinds.occlusion {
            let occluder = masks.occluder.as_mut().ok_or("mask-types=occlusion needs 'occluder-model'")?;
            let weights = occluder.mask(&device.host_crop)?;
            graphs.upload_mask(&weights, side, &mut device.occlusion)?;
        }
        let start = times.lap(1, start);
        let outputs = swapper.run_device_tiles(pixels, &sources[source].tensor)?;
        let Backend::Graph(graphs) = pixels else { return Err("no graph backend".to_string()) };
        graphs.boost_tiles_out(outputs, (size, factor), tiles_output(family), &mut device.crop)?;
        let start = times.lap(3, start);

        let crop = device.crop.as_ref().ok_or("the swapped crop is missing")?;
        if kinds.region {
            graphs.download_float_crop(crop, &mut device.host_swapped)?;
            let parser = masks.parser.as_mut().ok_or("mask-types=region needs 'parser-model'")?;
            let weights = parser.mask(&device.host_swapped, side, &masks.regions)?;
            graphs.upload_mask(&weights, side, &mut device.region)?;
        }
        let start = times.lap(4, start);

        let chosen = [
            (kinds.box_mask, &device.box_mask),
            (kinds.occlusion, &device.occlusion),
            (kinds.area, &device.area),
            (kinds.region, &device.region),
        ];
        let layers = chosen
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, mask)| mask.as_ref().ok_or("a mask was not made"))
            .collect::<Result<Vec<&DynTensor>, _>>()?;
        graphs.boost_paste(frame, &place, crop, &layers, opacity)?;
        times.lap(5, start);
        Ok(())
    }
}
