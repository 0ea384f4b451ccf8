// SPDX-License-Identifier: MPL-2.0
//! FaceFusion's pixel steps on the graph backend ([`super::boost`]'s graphs): one face's frame
//! rectangle goes up once, the pixel-boost crop is warped and split into the swapper's input
//! tiles where the swapper reads them, the swapped tiles become one float crop there, and the
//! paste comes back as the face's rectangle. Masks made on the host are uploaded
//! ([`GraphBackend::upload_mask`]); the crop comes down only for a mask made on the host.

use ort::value::{DynTensor, Tensor, TensorElementType};

use super::boost::{self, PASTE_PARAMS, TILES_PARAMS, TilesOutput};
use super::face_masks;
use super::{GraphBackend, ModelSession, elem_of, run_error};
use crate::backend::FaceRegion;
use crate::runtime::{host_tensor, tensor_shape};
use crate::vision::float_paste::paste_rect;
use crate::vision::sample::fixed;
use crate::vision::{Affine, FrameView, FrameViewMut, Rect, RgbImage};

/// How a swapper takes its tiles: the model's side, the pixel-boost factor, whether all tiles go
/// in one batched input, the input's element type, and the family's normalisation of each byte
/// (`table[256·c + v]` for byte `v` of channel `c`); and the element type of the occluder's
/// input when the tiles graph makes it too.
#[derive(Clone, Debug, PartialEq)]
pub struct TileFormat {
    pub size: usize,
    pub factor: usize,
    pub batched: bool,
    pub element: TensorElementType,
    pub table: [f32; 768],
    pub occluder: Option<TensorElementType>,
}

/// One face's place in the frame for the FaceFusion steps: the alignment (frame → crop at the
/// boost side), the frame rectangle loaded for it (the crop's taps and the paste area), and
/// FaceFusion's paste area.
#[derive(Debug)]
pub struct BoostFace {
    pub region: FaceRegion,
    pub paste: Rect,
    m: Affine,
    side: usize,
    frame: (usize, usize),
}

/// Sessions by the key their graph was built for.
type Cache<K> = Vec<(K, ModelSession)>;

/// The untile graph's key: model side, boost factor, the tiles in each output, their type, the
/// output conversion.
type UntileKey = (usize, usize, Vec<usize>, TensorElementType, TilesOutput);

/// The graphs of the FaceFusion steps, built on first use per shape.
#[derive(Default)]
pub(super) struct Graphs {
    tiles_in: Cache<TileFormat>,
    tiles_out: Cache<UntileKey>,
    /// By mask count.
    paste: Cache<usize>,
    /// By crop side, output rank and type.
    occlusion: Cache<(usize, usize, TensorElementType)>,
    /// By crop side and input type.
    parser_input: Cache<(usize, TensorElementType)>,
    /// By crop side, selected classes (bits) and logits type.
    region: Cache<(usize, Vec<u32>, TensorElementType)>,
}

/// The session whose key is `key` in `cache`, built by `build` on first use.
fn cached<'c, K: PartialEq>(
    cache: &'c mut Cache<K>,
    key: K,
    name: &str,
    options: &crate::runtime::SessionOptions,
    build: impl FnOnce() -> Vec<u8>,
) -> Result<&'c mut ModelSession, String> {
    let index = match cache.iter().position(|(k, _)| *k == key) {
        Some(i) => i,
        None => {
            let session = ModelSession::open_memory(name, &build(), options).map_err(|e| e.to_string())?;
            // Few shapes are in use at once (a boost size, a mask count): keep the recent ones.
            if cache.len() >= 8 {
                cache.remove(0);
            }
            cache.push((key, session));
            cache.len() - 1
        }
    };
    Ok(&mut cache[index].1)
}

fn int64s(values: Vec<i64>, shape: Vec<usize>) -> Result<DynTensor, String> {
    Ok(Tensor::from_array((shape, values.into_boxed_slice())).map_err(|e| e.to_string())?.upcast())
}

/// The frame rectangle a replicate-border warp of `side × side` by `m` reads: the bounding box
/// of its taps, clamped into the frame (a tap outside reads the nearest edge pixel).
fn taps_rect(m: &Affine, side: usize, (width, height): (usize, usize)) -> Option<Rect> {
    let inv = m.invert().filter(|inv| inv.m.iter().all(|v| v.is_finite()))?;
    let last = side.saturating_sub(1) as f64;
    let corners = [(0.0, 0.0), (last, 0.0), (0.0, last), (last, last)].map(|(u, v)| inv.apply(u, v));
    let (mut x0, mut y0, mut x1, mut y1) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
    for (x, y) in corners {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    // A pixel's margin each way for the fixed-point rounding, one more for the right/bottom taps.
    let span = |lo: f64, hi: f64, len: usize| {
        let last = len as f64 - 1.0;
        let lo = (lo.floor() - 1.0).clamp(0.0, last);
        let hi = (hi.ceil() + 2.0).clamp(lo + 1.0, len as f64);
        (lo as i32, (hi - lo) as i32)
    };
    let ((x, w), (y, h)) = (span(x0, x1, width), span(y0, y1, height));
    Some(Rect::new(x, y, w, h))
}

impl GraphBackend {
    /// Loads the frame rectangle of a face whose crop is `side × side` by `m` (frame → crop):
    /// what the replicate-border warp reads and FaceFusion's paste area. `None` when the face
    /// cannot touch the frame (nothing to paste).
    pub fn load_boost_face(&mut self, frame: &FrameView, m: &Affine, side: usize) -> Result<Option<BoostFace>, String> {
        let size = (frame.width, frame.height);
        let paste = paste_rect(m, side, frame.width, frame.height);
        let Some(taps) = taps_rect(m, side, size) else { return Ok(None) };
        if paste.is_empty() || frame.width == 0 || frame.height == 0 {
            return Ok(None);
        }
        let region = self.load_region(frame, taps.union(paste))?;
        Ok(Some(BoostFace { region, paste, m: *m, side, frame: size }))
    }

    /// Warps `face`'s crop and writes it as the swapper's input tiles into `inputs` (one
    /// `[factor², 3, size, size]` tensor when `format.batched`, else `factor²` `[1, 3, size,
    /// size]` tensors); with `crop`, also brings the 8-bit crop to host memory there.
    /// With `format.occluder`, also writes the occluder's input into `occluder`.
    pub fn boost_tiles_in(
        &mut self,
        face: &BoostFace,
        format: &TileFormat,
        inputs: &mut [DynTensor],
        crop: Option<&mut RgbImage>,
        occluder: Option<&mut DynTensor>,
    ) -> Result<(), String> {
        let (size, factor) = (format.size, format.factor);
        let side = size * factor;
        let count = factor * factor;
        let expected = if format.batched { 1 } else { count };
        if side != face.side || inputs.len() != expected {
            return Err(format!("{} input tensors for {count} tiles of {size} px at {}", inputs.len(), face.side));
        }
        let pixels = face.region.pixels.as_ref().ok_or("the face region was not loaded")?;
        let inv = face.m.invert().ok_or("degenerate face alignment")?;
        let [a, b, c, d, e, f] = inv.m;
        let rect = face.region.rect;
        let (rx, ry) = (rect.x as i64, rect.y as i64);
        let mut rows = Vec::with_capacity(2 * side);
        rows.extend((0..side).map(|y| fixed(b * y as f64 + c) - (rx << 16)));
        rows.extend((0..side).map(|y| fixed(e * y as f64 + f) - (ry << 16)));
        let (w, h) = (face.frame.0 as i64, face.frame.1 as i64);
        let params: [i64; TILES_PARAMS] = [fixed(a), fixed(d), -rx, w - 1 - rx, -ry, h - 1 - ry];
        let rows = int64s(rows, vec![2, side])?;
        let params = int64s(params.to_vec(), vec![TILES_PARAMS])?;
        let out = elem_of(format.element)?;
        let occluder_elem = format.occluder.map(elem_of).transpose()?;
        if occluder_elem.is_some() != occluder.is_some() {
            return Err("the occluder's input and the tile format disagree".to_string());
        }
        let session = cached(&mut self.facefusion.tiles_in, format.clone(), "tiles graph", &self.options, || {
            boost::tiles_in(size, factor, &format.table, format.batched, out, occluder_elem)
        })?;
        let mut binding = session.binding()?;
        binding.bind_input("region", pixels).map_err(run_error("cannot bind the face region"))?;
        binding.bind_input("rows", &rows).map_err(run_error("cannot bind the warp"))?;
        binding.bind_input("params", &params).map_err(run_error("cannot bind the warp"))?;
        if format.batched {
            binding.bind_output("tiles", &mut inputs[0]).map_err(run_error("cannot bind the swapper input"))?;
        } else {
            for (k, input) in inputs.iter_mut().enumerate() {
                let name = if count == 1 { "tile0".to_string() } else { format!("tile{k}") };
                binding.bind_output(&name, input).map_err(run_error("cannot bind the swapper input"))?;
            }
        }
        if let Some(occluder) = occluder {
            binding.bind_output("occluder", occluder).map_err(run_error("cannot bind the occluder's input"))?;
        }
        match crop {
            None => session.run_queued(&binding),
            Some(crop) => {
                ModelSession::bind_output_to_host(&mut binding, "crop")?;
                let outputs = session.run(&binding)?;
                let (_, bytes) = outputs["crop"].try_extract_tensor::<u8>().map_err(|e| e.to_string())?;
                crop.reshape(side, side);
                if bytes.len() != crop.data.len() {
                    return Err("the tiles graph returned a crop of the wrong size".to_string());
                }
                crop.data.copy_from_slice(bytes);
                Ok(())
            }
        }
    }

    /// Turns the swapper's outputs (`factor²` tiles in all, in tile order, over one or more
    /// tensors) into the float crop `crop` (`[1, 3, side, side]`, allocated here on first use).
    pub fn boost_tiles_out(
        &mut self,
        outputs: &[DynTensor],
        (size, factor): (usize, usize),
        output: TilesOutput,
        crop: &mut Option<DynTensor>,
    ) -> Result<(), String> {
        let first = outputs.first().ok_or("no swapper outputs")?;
        let element = *first.data_type();
        let input = elem_of(element)?;
        let mut batches = Vec::with_capacity(outputs.len());
        for o in outputs {
            match tensor_shape(o).as_slice() {
                [n, 3, h, w] if *h == size && *w == size && *o.data_type() == element => batches.push(*n),
                other => return Err(format!("swapper output {other:?}, expected [N,3,{size},{size}]")),
            }
        }
        if batches.iter().sum::<usize>() != factor * factor {
            return Err(format!("{} swapped tiles, expected {}", batches.iter().sum::<usize>(), factor * factor));
        }
        let side = size * factor;
        if crop.as_ref().is_none_or(|t| tensor_shape(t) != [1, 3, side, side]) {
            *crop = Some(self.tensor(&[1, 3, side, side], TensorElementType::Float32)?);
        }
        let target = crop.as_mut().ok_or("the crop has no device tensor")?;
        let key = (size, factor, batches.clone(), element, output);
        let session = cached(&mut self.facefusion.tiles_out, key, "untile graph", &self.options, || {
            boost::tiles_out(size, factor, &batches, input, output)
        })?;
        let mut binding = session.binding()?;
        for (k, o) in outputs.iter().enumerate() {
            binding.bind_input(format!("o{k}"), o).map_err(run_error("cannot bind a swapper output"))?;
        }
        binding.bind_output("crop", &mut *target).map_err(run_error("cannot bind the crop"))?;
        session.run_queued(&binding)
    }

    /// The `[1, 1, side, side]` tensor in `mask`, allocated when missing or of another size.
    fn mask_tensor<'m>(&self, side: usize, mask: &'m mut Option<DynTensor>) -> Result<&'m mut DynTensor, String> {
        if mask.as_ref().is_none_or(|t| tensor_shape(t) != [1, 1, side, side]) {
            *mask = Some(self.tensor(&[1, 1, side, side], TensorElementType::Float32)?);
        }
        mask.as_mut().ok_or_else(|| "the mask has no device tensor".to_string())
    }

    /// The occlusion mask of a `side`-pixel crop from the occluder's `output` (made from the
    /// input [`GraphBackend::boost_tiles_in`] wrote), into `mask`.
    pub fn occlusion_mask(
        &mut self,
        output: &DynTensor,
        side: usize,
        mask: &mut Option<DynTensor>,
    ) -> Result<(), String> {
        let element = *output.data_type();
        let input = elem_of(element)?;
        let rank = tensor_shape(output).len();
        let target = self.mask_tensor(side, mask)?;
        let session =
            cached(&mut self.facefusion.occlusion, (side, rank, element), "occlusion graph", &self.options, || {
                face_masks::occlusion_mask(side, rank, input)
            })?;
        let mut binding = session.binding()?;
        binding.bind_input("output", output).map_err(run_error("cannot bind the occluder's output"))?;
        binding.bind_output("mask", target).map_err(run_error("cannot bind the mask"))?;
        session.run_queued(&binding)
    }

    /// The face parser's input from the swapped float crop `crop`, into `input`.
    pub fn parser_input(&mut self, crop: &DynTensor, input: &mut DynTensor) -> Result<(), String> {
        let side = match tensor_shape(crop).as_slice() {
            [1, 3, h, w] if h == w => *w,
            other => return Err(format!("expected a float crop [1,3,S,S], found {other:?}")),
        };
        let element = *input.data_type();
        let out = elem_of(element)?;
        let session =
            cached(&mut self.facefusion.parser_input, (side, element), "parser input graph", &self.options, || {
                face_masks::parser_input(side, out)
            })?;
        let mut binding = session.binding()?;
        binding.bind_input("crop", crop).map_err(run_error("cannot bind the crop"))?;
        binding.bind_output("input", input).map_err(run_error("cannot bind the parser's input"))?;
        session.run_queued(&binding)
    }

    /// The region mask of a `side`-pixel crop from the parser's `logits`: 1 where the most likely
    /// class `c` has `selected[c]` 1, into `mask`.
    pub fn region_mask(
        &mut self,
        logits: &DynTensor,
        side: usize,
        selected: &[f32],
        mask: &mut Option<DynTensor>,
    ) -> Result<(), String> {
        let element = *logits.data_type();
        let input = elem_of(element)?;
        if tensor_shape(logits).get(1) != Some(&selected.len()) {
            return Err(format!("parser logits {:?} for {} classes", tensor_shape(logits), selected.len()));
        }
        let target = self.mask_tensor(side, mask)?;
        let key = (side, selected.iter().map(|v| v.to_bits()).collect(), element);
        let session = cached(&mut self.facefusion.region, key, "region graph", &self.options, || {
            face_masks::region_mask(side, selected, input)
        })?;
        let mut binding = session.binding()?;
        binding.bind_input("logits", logits).map_err(run_error("cannot bind the parser's output"))?;
        binding.bind_output("mask", target).map_err(run_error("cannot bind the mask"))?;
        session.run_queued(&binding)
    }

    /// Copies `weights` (`side × side`) into `mask` (`[1, 1, side, side]` in the models' memory,
    /// allocated here when missing or of another size).
    pub fn upload_mask(&mut self, weights: &[f32], side: usize, mask: &mut Option<DynTensor>) -> Result<(), String> {
        if weights.len() != side * side {
            return Err(format!("a mask of {} values for a {side}-pixel crop", weights.len()));
        }
        let device = self.mask_tensor(side, mask)?;
        let host = Tensor::from_array((vec![1, 1, side, side], weights.to_vec().into_boxed_slice()))
            .map_err(|e| e.to_string())?
            .upcast();
        host.copy_into(device).map_err(run_error("cannot upload the mask"))
    }

    /// The float crop (`[1, 3, side, side]`) as packed RGB values in `rgb`, for a mask made on
    /// the host.
    pub fn download_float_crop(&mut self, crop: &DynTensor, rgb: &mut Vec<f32>) -> Result<(), String> {
        let shape = tensor_shape(crop);
        let side = match shape.as_slice() {
            [1, 3, h, w] if h == w => *w,
            other => return Err(format!("expected a float crop [1,3,S,S], found {other:?}")),
        };
        let mut host = host_tensor(&shape, TensorElementType::Float32)?;
        crop.copy_into(&mut host).map_err(run_error("cannot download the crop"))?;
        let (_, planar) = host.try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
        let plane = side * side;
        rgb.resize(3 * plane, 0.0);
        for (i, px) in rgb.chunks_exact_mut(3).enumerate() {
            for (c, v) in px.iter_mut().enumerate() {
                *v = planar[c * plane + i];
            }
        }
        Ok(())
    }

    /// Pastes the float `crop` of `face` into `frame` through the per-pixel minimum of `masks`
    /// at `opacity`, as `vision::float_paste::paste_float` does over FaceFusion's paste area.
    pub fn boost_paste(
        &mut self,
        frame: &mut FrameViewMut,
        face: &BoostFace,
        crop: &DynTensor,
        masks: &[&DynTensor],
        opacity: f32,
    ) -> Result<(), String> {
        let rect = face.region.rect;
        if masks.is_empty() {
            return Err("no mask to paste through".to_string());
        }
        if rect.is_empty() || rect.clip_to(frame.width, frame.height) != rect {
            return Err(format!("the face region {rect:?} is not inside the {}×{} frame", frame.width, frame.height));
        }
        let pixels = face.region.pixels.as_ref().ok_or("the face region was not loaded")?;
        let [ma, mb, mc, md, me, mf] = face.m.m;
        let paste = face.paste;
        let (px, rows_h) = (paste.x as f64, rect.height as usize);
        let mut rows = Vec::with_capacity(2 * rows_h);
        rows.extend((0..rows_h).map(|y| fixed(ma * px + mb * (rect.y as usize + y) as f64 + mc)));
        rows.extend((0..rows_h).map(|y| fixed(md * px + me * (rect.y as usize + y) as f64 + mf)));
        let (x0, y0) = ((paste.x - rect.x) as i64, (paste.y - rect.y) as i64);
        let params: [i64; PASTE_PARAMS] =
            [fixed(ma), fixed(md), x0, x0, x0 + paste.width as i64, y0, y0 + paste.height as i64];
        let rows = int64s(rows, vec![2, rows_h])?;
        let params = int64s(params.to_vec(), vec![PASTE_PARAMS])?;
        let opacity: DynTensor = Tensor::from_array((vec![1], vec![opacity.clamp(0.0, 1.0)].into_boxed_slice()))
            .map_err(|e| e.to_string())?
            .upcast();
        let GraphBackend { facefusion, options, pasted, weights, .. } = self;
        let session = cached(&mut facefusion.paste, masks.len(), "float paste graph", options, || {
            boost::float_paste(masks.len())
        })?;
        let mut binding = session.binding()?;
        binding.bind_input("region", pixels).map_err(run_error("cannot bind the face region"))?;
        binding.bind_input("crop", crop).map_err(run_error("cannot bind the crop"))?;
        for (k, mask) in masks.iter().enumerate() {
            binding.bind_input(format!("mask{k}"), *mask).map_err(run_error("cannot bind a mask"))?;
        }
        binding.bind_input("rows", &rows).map_err(run_error("cannot bind the paste"))?;
        binding.bind_input("params", &params).map_err(run_error("cannot bind the paste"))?;
        binding.bind_input("opacity", &opacity).map_err(run_error("cannot bind the opacity"))?;
        ModelSession::bind_output_to_host(&mut binding, "pasted")?;
        ModelSession::bind_output_to_host(&mut binding, "bad")?;
        // Packed RGB takes the whole rectangle back (weight-0 pixels keep their bytes); YUV
        // needs the weights to know which chroma samples may change.
        let packed = frame.format.packed_layout().is_some();
        if !packed {
            ModelSession::bind_output_to_host(&mut binding, "weights")?;
        }
        let outputs = session.run(&binding)?;
        let (_, bad) = outputs["bad"].try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
        if bad.first().is_none_or(|&b| b != 0.0) {
            return Err("the swapped face or a mask model's output holds a non-finite value".to_string());
        }
        let (_, bytes) = outputs["pasted"].try_extract_tensor::<u8>().map_err(|e| e.to_string())?;
        let (w, h) = (rect.width as usize, rect.height as usize);
        if bytes.len() != w * h * 3 {
            return Err("the paste graph returned a region of the wrong size".to_string());
        }
        pasted.reshape(w, h);
        pasted.data.copy_from_slice(bytes);
        if packed {
            frame.write_region(rect, pasted, None);
            return Ok(());
        }
        let (_, written) = outputs["weights"].try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
        if written.len() != w * h {
            return Err("the paste graph returned a region of the wrong size".to_string());
        }
        weights.clear();
        weights.extend_from_slice(written);
        frame.write_region(rect, pasted, Some(weights));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_taps_rectangle_covers_every_tap_clamped_into_the_frame() {
        // Crop = frame shifted by (10.5, 20.25), side 8: taps from (10.5, 20.25) to (17.5, 27.25).
        let m = Affine { m: [1.0, 0.0, -10.5, 0.0, 1.0, -20.25] };
        assert_eq!(taps_rect(&m, 8, (100, 100)), Some(Rect::new(9, 19, 11, 11)));
        // A crop far left of the frame reads its first column only.
        let m = Affine { m: [1.0, 0.0, 500.0, 0.0, 1.0, 0.0] };
        assert_eq!(taps_rect(&m, 8, (100, 100)), Some(Rect::new(0, 0, 1, 9)));
        assert_eq!(taps_rect(&Affine { m: [0.0; 6] }, 8, (100, 100)), None);
    }
}
