#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Independent NumPy/OpenCV implementation of FaceFusion 3.8.1's occlusion, region and area masks
and of its fan_68_5 landmarks, written from ../shared/docs/facefusion-contracts.md (sections 5.2
to 5.4 and 9.2), so that tests can compare gstdlc's Rust masks against it.

As in FaceFusion, crops here are BGR (`crop_bgr`): uint8 for the occluder (the crop before the
swap), float in [0, 255] for the parser (the swapped crop). Import the functions (the FaceFusion
path reference, facefusion_reference.py, does), or run the commands; raw files are row-major,
no header:
  crop        --image PNG --box X0,Y0,X1,Y1 --side S --out F     RGB uint8 S*S*3 of a picture's box
  occlusion   --model M --crop F --side S --out O                 F: RGB uint8; O: float32 S*S
  region      --model M --crop F --side S --regions A,B --out O   F: RGB float32 in [0, 255]
  area        --points F --count N --side S --areas A,B --out O   F: float32 N*68*2 (crop pixels);
                                                                  O: float32 N*S*S
  landmarks68 --model M --five X,Y,... (10 numbers)               prints the 68 points as JSON
"""
import argparse
import json
import sys

import cv2
import numpy as np
import onnxruntime as ort

# Parser classes by FaceFusion's region names (CelebAMask-HQ order).
REGIONS = {"skin": 1, "left-eyebrow": 2, "right-eyebrow": 3, "left-eye": 4, "right-eye": 5,
           "glasses": 6, "nose": 10, "mouth": 11, "upper-lip": 12, "lower-lip": 13}
# 68-point indices of FaceFusion's areas.
AREAS = {
    "upper-face": [0, 1, 2, 31, 32, 33, 34, 35, 14, 15, 16, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17],
    "lower-face": [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 35, 34, 33, 32, 31],
    "mouth": list(range(48, 68)),
}
FFHQ_UNIT = np.array([[0.37691676, 0.46864664], [0.62285697, 0.46912813], [0.50123859, 0.61331904],
                      [0.39308822, 0.72541100], [0.61150205, 0.72490465]])
OCCLUDER_SIZE = (256, 256)
PARSER_SIZE = (512, 512)


def session(path):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def soften(mask):
    """The blur and threshold every model and area mask goes through: sigma 5 crop pixels."""
    blurred = cv2.GaussianBlur(mask.clip(0, 1), (0, 0), 5)
    return (blurred.clip(0.5, 1) - 0.5) * 2


def occlusion_mask(occluder, crop_bgr):
    """The occlusion mask of a uint8 BGR crop (before the swap), at the crop's size."""
    h, w = crop_bgr.shape[:2]
    small = cv2.resize(crop_bgr, OCCLUDER_SIZE)
    feed = small[None].astype(np.float32) / 255.0                    # NHWC, BGR as it is
    out = occluder.run(None, {occluder.get_inputs()[0].name: feed})[0][0]
    mask = out.clip(0, 1).astype(np.float32)
    mask = cv2.resize(mask, (w, h))                                   # drops a 1-channel axis
    return soften(mask)


def region_mask(parser, crop_bgr, regions):
    """The region mask of a float BGR crop in [0, 255] (after the swap) for region names."""
    h, w = crop_bgr.shape[:2]
    big = cv2.resize(crop_bgr, PARSER_SIZE)
    rgb = big[:, :, ::-1].astype(np.float32) / 255.0
    rgb = (rgb - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    feed = rgb.transpose(2, 0, 1)[None]
    logits = parser.run(None, {parser.get_inputs()[0].name: feed})[0][0]
    chosen = np.isin(logits.argmax(axis=0), [REGIONS[r] for r in regions]).astype(np.float32)
    return soften(cv2.resize(chosen, (w, h)))


def area_mask(side, landmarks_68, areas):
    """The area mask over a side x side crop from 68 landmarks in crop pixels."""
    indices = [i for area in areas for i in AREAS[area]]
    hull = cv2.convexHull(np.asarray(landmarks_68)[indices].astype(np.int32))
    mask = np.zeros((side, side), np.float32)
    cv2.fillConvexPoly(mask, hull, 1.0)
    return soften(mask)


def landmarks_68_5(model, five):
    """fan_68_5: the five points moved onto the unit ffhq_512 template, run, moved back."""
    five = np.asarray(five, np.float32).reshape(5, 2)
    m = cv2.estimateAffinePartial2D(five, FFHQ_UNIT, method=cv2.RANSAC, ransacReprojThreshold=100)[0]
    unit = cv2.transform(five.reshape(1, -1, 2), m).reshape(-1, 2)
    out = model.run(None, {model.get_inputs()[0].name: unit[None].astype(np.float32)})[0][0]
    return cv2.transform(out.reshape(1, -1, 2), cv2.invertAffineTransform(m)).reshape(-1, 2)


def names(text):
    return [n.strip() for n in text.split(",") if n.strip()]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["crop", "occlusion", "region", "area", "landmarks68"])
    p.add_argument("--image")
    p.add_argument("--box")
    p.add_argument("--model")
    p.add_argument("--crop")
    p.add_argument("--points")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--side", type=int)
    p.add_argument("--regions", default=",".join(REGIONS))
    p.add_argument("--areas", default=",".join(AREAS))
    p.add_argument("--five")
    p.add_argument("--out")
    a = p.parse_args()
    s = a.side
    if a.command == "crop":
        bgr = cv2.imread(a.image, cv2.IMREAD_COLOR)
        if bgr is None:
            sys.exit(f"cannot read {a.image}")
        x0, y0, x1, y1 = [int(v) for v in a.box.split(",")]
        crop = cv2.resize(bgr[y0:y1, x0:x1], (s, s), interpolation=cv2.INTER_AREA)
        crop[:, :, ::-1].tofile(a.out)
    elif a.command == "occlusion":
        rgb = np.fromfile(a.crop, np.uint8).reshape(s, s, 3)
        occlusion_mask(session(a.model), np.ascontiguousarray(rgb[:, :, ::-1])).astype(np.float32).tofile(a.out)
    elif a.command == "region":
        rgb = np.fromfile(a.crop, np.float32).reshape(s, s, 3)
        mask = region_mask(session(a.model), np.ascontiguousarray(rgb[:, :, ::-1]), names(a.regions))
        mask.astype(np.float32).tofile(a.out)
    elif a.command == "area":
        sets = np.fromfile(a.points, np.float32).reshape(a.count, 68, 2)
        np.stack([area_mask(s, p, names(a.areas)) for p in sets]).astype(np.float32).tofile(a.out)
    elif a.command == "landmarks68":
        five = [float(v) for v in a.five.split(",")]
        print(json.dumps(landmarks_68_5(session(a.model), five).tolist()))


if __name__ == "__main__":
    main()
