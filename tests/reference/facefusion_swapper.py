#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""FaceFusion's swapper step in NumPy, written from ../shared/docs/facefusion-contracts.md §2
(FaceFusion 3.8.1, processors/modules/face_swapper/core.py), for the fixture stand-ins: the
source tensor (§2.1) and, per pixel-boost tile, prepare_crop_frame -> model -> normalize_crop_frame
(§2.2), one tile at a time as FaceFusion runs them. The models themselves are evaluated in NumPy
from their documented formulas (tests/fixtures/make_models.py, swapper_families.py), not by ONNX
Runtime, so that this checks the Rust code end to end.

Usage:
  facefusion_swapper.py --family F --model M [--converter C] (--embedding E | --source-crop P)
                        --tiles T --count N --out OUT --source-out SRC
E: 512 float32 (the source face's raw ArcFace embedding); P (blendswap, uniface): the source
face's aligned crop, Q x Q x 3 uint8 RGB; T: N x S x S x 3 uint8 RGB tiles;
OUT: N x S x S x 3 float32 RGB in [0, 255]; SRC: the source tensor, float32.
F: inswapper | hyperswap | simswap | simswap_unofficial_512 | ghost | hififace | blendswap | uniface.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fixtures"))
import make_models  # noqa: E402
import swapper_families  # noqa: E402

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# family -> (FaceFusion model type, size, mean, std)
FAMILIES = {
    "inswapper": ("inswapper", 128, [0.0] * 3, [1.0] * 3),
    "hyperswap": ("hyperswap", 256, [0.5] * 3, [0.5] * 3),
    "simswap": ("simswap", 256, IMAGENET_MEAN, IMAGENET_STD),
    "simswap_unofficial_512": ("simswap", 512, [0.0] * 3, [1.0] * 3),
    "ghost": ("ghost", 256, [0.5] * 3, [0.5] * 3),
    "hififace": ("hififace", 256, [0.5] * 3, [0.5] * 3),
    "blendswap": ("blendswap", 256, [0.0] * 3, [1.0] * 3),
    "uniface": ("uniface", 256, [0.5] * 3, [0.5] * 3),
}
# family -> side of the source crop, for the families whose identity is a picture
SOURCE_CROP = {"blendswap": 112, "uniface": 256}
DENORMALISED = ("ghost", "hififace", "hyperswap", "uniface")


def run_standin(model_path, source, target):
    """Output 0 of the stand-in at model_path for float32 inputs, as float32."""
    name = Path(model_path).name
    if name in swapper_families.SWAPPERS:
        return swapper_families.evaluate_swapper(name, source, target)[0].astype(np.float32)
    if name.startswith("inswapper"):
        fp16 = "fp16" in name
        if fp16:
            source, target = source.astype(np.float16), target.astype(np.float16)
        p = make_models.seeded_matrix(make_models.SEED_INSWAPPER_P, 512, 3, scale=2.0).astype(np.float64)
        z = 4 * (target.astype(np.float64) - 0.5) + (source.astype(np.float64) @ p)[:, :, None, None]
        y = 1 / (1 + np.exp(-z))
        return y.astype(np.float16).astype(np.float32) if fp16 else y.astype(np.float32)
    raise SystemExit(f"no NumPy formula for the stand-in {name}")


def convert(converter_path, embedding):
    """The crossface converter's output, as ONNX Runtime would return it (float32)."""
    name = Path(converter_path).name
    return swapper_families.evaluate_converter(name, embedding).astype(np.float32)


def source_tensor(family, model_path, converter_path, embedding):
    model_type = FAMILIES[family][0]
    e = embedding.reshape(1, -1)
    if model_type == "inswapper":
        emap = numpy_helper.to_array(onnx.load(model_path).graph.initializer[-1])
        source = np.dot(e, emap) / np.linalg.norm(e)
    elif model_type == "hyperswap":
        source = e / np.linalg.norm(e)
    elif model_type == "ghost":
        source = convert(converter_path, e).ravel().reshape(1, -1)
    else:
        converted = convert(converter_path, e).ravel()
        source = (converted / np.linalg.norm(converted)).reshape(1, -1)
    # balance_source_embedding at FaceFusion's default weight 0.5: f = interp(0.5, [0, 1],
    # [0.35, -0.35]) = 0, so source * (1 - f) + target * f is the source itself.
    weight = np.float32(np.interp(0.5, [0, 1], [0.35, -0.35]))
    assert weight == 0.0
    return source.astype(np.float32)


def source_picture_tensor(crop_rgb):
    """prepare_source_frame after the warp: the BGR crop to RGB, / 255, CHW, batch, float32."""
    frame_bgr = crop_rgb[:, :, ::-1]
    x = frame_bgr[:, :, ::-1] / 255.0
    return np.expand_dims(x.transpose(2, 0, 1), axis=0).astype(np.float32)


def swap_tile(family, model_path, source, tile_rgb):
    model_type, _, mean, std = FAMILIES[family]
    crop_bgr = tile_rgb[:, :, ::-1]
    # prepare_crop_frame
    x = crop_bgr[:, :, ::-1] / 255.0
    x = (x - mean) / std
    x = np.expand_dims(x.transpose(2, 0, 1), axis=0).astype(np.float32)
    y = run_standin(model_path, source, x)[0]
    # normalize_crop_frame
    y = y.transpose(1, 2, 0)
    if model_type in DENORMALISED:
        y = y * std + mean
    y = y.clip(0, 1)
    out_bgr = y[:, :, ::-1] * 255
    return out_bgr[:, :, ::-1]


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--family", "--model", "--tiles", "--out", "--source-out"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--converter")
    parser.add_argument("--embedding")
    parser.add_argument("--source-crop")
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    size = FAMILIES[args.family][1]
    tiles = np.fromfile(args.tiles, np.uint8).reshape(args.count, size, size, 3)
    if args.family in SOURCE_CROP:
        side = SOURCE_CROP[args.family]
        source = source_picture_tensor(np.fromfile(args.source_crop, np.uint8).reshape(side, side, 3))
    else:
        embedding = np.fromfile(args.embedding, np.float32)
        source = source_tensor(args.family, args.model, args.converter, embedding)
    out = np.stack([swap_tile(args.family, args.model, source, tile) for tile in tiles])
    out.astype(np.float32).tofile(args.out)
    source.ravel().tofile(args.source_out)


if __name__ == "__main__":
    main()
