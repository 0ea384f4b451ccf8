#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Independent reference implementation of FaceFusion 3.8.1's face swap, written from
../shared/docs/facefusion-contracts.md with OpenCV and NumPy, so that tests can compare gstdlc's
FaceFusion path (dlcswap with swapper-family / pixel-boost / mask-types) against it.

It works as FaceFusion does: BGR frames, the crop taken at the pixel-boost size with the
template scaled to it (cv2.estimateAffinePartial2D, RANSAC, BORDER_REPLICATE), the box mask from
the pre-swap crop, the crop split into interleaved model-size tiles, each tile normalised, swapped
and de-normalised on its own, the tiles put back together, the masks combined by their minimum
and the float crop pasted back with a float blend truncated to 8 bits.

Commands (images are read and written as PNG/JPEG files; JSON goes to stdout):
  swap  --recognizer R --detector D --swapper S --family F --source SRC --target TGT --out OUT
        --faces-json FACES [--converter C] [--boost N|auto] [--mask-types box,occlusion,region,area]
        [--mask-blur 0.3] [--mask-padding T,R,B,L] [--occluder M] [--parser M] [--regions ...]
        [--landmark-68 M] [--areas ...]
  auto-boost --family F --faces-json FACES      (the pixel-boost=0 size of each face, as JSON)
  box-mask --size N [--mask-blur 0.3] [--mask-padding T,R,B,L] --out OUT.npy
The source identity is the ArcFace embedding of the source picture's largest face, found and
embedded as tests/reference/insightface_reference.py does (the identity gstdlc computes); the
target faces' five points come from FACES (a JSON list of {"bbox": [...], "kps": [[x,y]*5]}), so
that both implementations swap the same faces.
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import insightface_reference as insightface  # noqa: E402

# Unit-square templates (contracts §3): left eye, right eye, nose, left and right mouth corner.
TEMPLATES = {
    "arcface_112_v1": [[0.35473214, 0.45658929], [0.64526786, 0.45658929], [0.50000000, 0.61154464],
                       [0.37913393, 0.77687500], [0.62086607, 0.77687500]],
    "arcface_112_v2": [[0.34191607, 0.46157411], [0.65653393, 0.45983393], [0.50022500, 0.64050536],
                       [0.37097589, 0.82469196], [0.63151696, 0.82325089]],
    "arcface_128": [[0.36167656, 0.40387734], [0.63696719, 0.40235469], [0.50019687, 0.56044219],
                    [0.38710391, 0.72160547], [0.61507734, 0.72034453]],
    "ffhq_512": [[0.37691676, 0.46864664], [0.62285697, 0.46912813], [0.50123859, 0.61331904],
                 [0.39308822, 0.72541100], [0.61150205, 0.72490465]],
    "mtcnn_512": [[0.36562865, 0.46733799], [0.63305391, 0.46585885], [0.50019127, 0.61942959],
                  [0.39032951, 0.77598822], [0.61178945, 0.77476328]],
}

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# Contracts §2: template, model size, target mean/std, source kind, whether the output is
# de-normalised (x·std + mean) before the clip to [0, 1], and the pixel-boost sizes allowed
# (FaceFusion's choices.py).
BOOST_128 = [128, 256, 384, 512, 768, 1024]
BOOST_256 = [256, 512, 768, 1024]
FAMILIES = {
    "inswapper": ("arcface_128", 128, [0.0] * 3, [1.0] * 3, "emap", False, BOOST_128),
    "hyperswap": ("arcface_128", 256, [0.5] * 3, [0.5] * 3, "norm", True, BOOST_256),
    "simswap": ("arcface_112_v1", 256, IMAGENET_MEAN, IMAGENET_STD, "converter_norm", False, BOOST_256),
    "simswap_unofficial_512": ("arcface_112_v1", 512, [0.0] * 3, [1.0] * 3, "converter_norm", False,
                               [512, 768, 1024]),
    "ghost": ("arcface_112_v1", 256, [0.5] * 3, [0.5] * 3, "converter_raw", True, BOOST_256),
    "hififace": ("mtcnn_512", 256, [0.5] * 3, [0.5] * 3, "converter_norm", True, BOOST_256),
}

MASK_TYPES = ("box", "occlusion", "region", "area")


def read_bgr(path):
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        sys.exit(f"cannot read {path}")
    return img


# ---- alignment (contracts §3) ------------------------------------------------------------------
def estimate_matrix(kps, template, size):
    points = np.array(TEMPLATES[template], dtype=np.float64) * size
    return cv2.estimateAffinePartial2D(np.asarray(kps, dtype=np.float64), points, method=cv2.RANSAC,
                                       ransacReprojThreshold=100)[0]


def warp_face(frame, kps, template, size):
    m = estimate_matrix(kps, template, size)
    crop = cv2.warpAffine(frame, m, (size, size), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_AREA)
    return crop, m


# ---- pixel boost (contracts §4) ----------------------------------------------------------------
def split_tiles(crop, size):
    """Tile k = i·T + j holds crop[i::T, j::T]."""
    t = crop.shape[0] // size
    return [crop[i::t, j::t] for i in range(t) for j in range(t)]


def join_tiles(tiles, size):
    t = int(round(len(tiles) ** 0.5))
    out = np.zeros((size * t, size * t, 3), dtype=tiles[0].dtype)
    for k, tile in enumerate(tiles):
        out[k // t::t, k % t::t] = tile
    return out


def auto_boost(family, kps):
    """gstdlc's `pixel-boost=0` rule (gst-inspect): the smallest allowed size at least the face's
    size in the frame, i.e. the side in frame pixels of the crop square at the model's size (its
    size divided by the alignment's scale), else the largest allowed size."""
    template, size, *_, sizes = FAMILIES[family]
    m = estimate_matrix(kps, template, size)
    side = size / np.sqrt(abs(np.linalg.det(m[:, :2])))
    return next((s for s in sizes if s >= side), sizes[-1])


# ---- masks (contracts §5, §6) ------------------------------------------------------------------
def box_mask(size, blur, padding):
    top, right, bottom, left = padding
    amount = int(size * 0.5 * blur)
    area = max(amount // 2, 1)
    mask = np.ones((size, size), dtype=np.float32)
    mask[:max(area, int(size * top / 100)), :] = 0
    mask[-max(area, int(size * bottom / 100)):, :] = 0
    mask[:, :max(area, int(size * left / 100))] = 0
    mask[:, -max(area, int(size * right / 100)):] = 0
    if amount > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), amount * 0.25)
    return mask


def other_masks():
    """Helper M's independent mask implementation (occlusion, region, area)."""
    try:
        import facefusion_masks
    except ImportError as e:
        sys.exit(f"occlusion/region/area masks need tests/reference/facefusion_masks.py: {e}")
    return facefusion_masks


# ---- swapper (contracts §2) --------------------------------------------------------------------
def source_tensor(family, swapper_path, converter, raw_embedding):
    kind = FAMILIES[family][4]
    e = np.asarray(raw_embedding, dtype=np.float64)
    if kind == "emap":
        emap = numpy_helper.to_array(onnx.load(swapper_path).graph.initializer[-1])
        return (e.reshape(1, -1) @ emap / np.linalg.norm(e)).astype(np.float32)
    if kind == "norm":
        return (e / np.linalg.norm(e)).reshape(1, -1).astype(np.float32)
    if converter is None:
        sys.exit(f"family {family} needs --converter")
    conv = converter.run(None, {"input": e.reshape(-1, 512).astype(np.float32)})[0].ravel().astype(np.float64)
    if kind == "converter_norm":
        conv = conv / np.linalg.norm(conv)
    return conv.reshape(1, -1).astype(np.float32)


def swap_tile(session, family, tile_bgr, source):
    _, _, mean, std, _, denormalise, _ = FAMILIES[family]
    x = tile_bgr[:, :, ::-1] / 255.0
    x = (x - np.array(mean)) / np.array(std)
    x = np.expand_dims(x.transpose(2, 0, 1), 0).astype(np.float32)
    inputs = {i.name: i for i in session.get_inputs()}
    dtype = lambda name: np.float16 if inputs[name].type == "tensor(float16)" else np.float32  # noqa: E731
    feeds = {"source": source.astype(dtype("source")), "target": x.astype(dtype("target"))}
    y = session.run(None, feeds)[0][0].astype(np.float32).transpose(1, 2, 0)
    if denormalise:
        y = y * np.array(std) + np.array(mean)
    return np.clip(y, 0, 1)[:, :, ::-1] * 255


# ---- paste back (contracts §7) -----------------------------------------------------------------
def paste_back(frame, crop, mask, m):
    h, w = frame.shape[:2]
    ch, cw = crop.shape[:2]
    inverse = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], dtype=np.float64)
    points = corners @ inverse[:, :2].T + inverse[:, 2]
    x1, y1 = np.clip(np.floor(points.min(axis=0)).astype(int), 0, [w, h])
    x2, y2 = np.clip(np.ceil(points.max(axis=0)).astype(int), 0, [w, h])
    shifted = inverse.copy()
    shifted[0, 2] -= x1
    shifted[1, 2] -= y1
    size = (int(x2 - x1), int(y2 - y1))
    if size[0] <= 0 or size[1] <= 0:
        return frame
    weight = cv2.warpAffine(mask, shifted, size).clip(0, 1)[:, :, None]
    face = cv2.warpAffine(crop, shifted, size, borderMode=cv2.BORDER_REPLICATE)
    out = frame.copy()
    region = out[y1:y2, x1:x2]
    out[y1:y2, x1:x2] = (region * (1 - weight) + face * weight).astype(np.uint8)
    return out


def swap(args):
    import onnxruntime  # noqa: F401  (the sessions come from insightface_reference)
    det, rec = insightface.session(args.detector), insightface.session(args.recognizer)
    swapper = insightface.session(args.swapper)
    converter = insightface.session(args.converter) if args.converter else None
    template, model_size = FAMILIES[args.family][:2]
    mask_types = [t for t in args.mask_types.split(",") if t]
    if not mask_types or any(t not in MASK_TYPES for t in mask_types):
        sys.exit(f"--mask-types: one or more of {MASK_TYPES}")
    padding = [int(v) for v in args.mask_padding.split(",")]

    source_rgb = insightface.read_rgb(args.source)
    source_face = insightface.largest([f for f in insightface.detect(det, source_rgb) if "kps" in f])
    raw = raw_embedding(rec, source_rgb, np.array(source_face["kps"]))
    source = source_tensor(args.family, args.swapper, converter, raw)

    frame = read_bgr(args.target)
    faces = json.load(open(args.faces_json))
    masks_module = other_masks() if set(mask_types) - {"box"} else None
    for face in faces:
        kps = np.array(face["kps"])
        boost = auto_boost(args.family, kps) if args.boost == "auto" else int(args.boost or model_size)
        if boost % model_size:
            sys.exit(f"--boost {boost} is not a multiple of the model size {model_size}")
        crop, m = warp_face(frame, kps, template, boost)
        masks = []
        if "box" in mask_types:
            masks.append(box_mask(boost, args.mask_blur, padding))
        if "occlusion" in mask_types:
            masks.append(masks_module.occlusion_mask(insightface.session(args.occluder), crop))
        tiles = [swap_tile(swapper, args.family, t, source) for t in split_tiles(crop, model_size)]
        swapped = join_tiles(tiles, model_size)
        if "area" in mask_types:
            lm68 = masks_module.landmarks_68_5(insightface.session(args.landmark_68), kps)
            lm68_crop = cv2.transform(lm68.reshape(1, -1, 2), m).reshape(-1, 2)
            masks.append(masks_module.area_mask(boost, lm68_crop, args.areas.split(",")))
        if "region" in mask_types:
            masks.append(masks_module.region_mask(insightface.session(args.parser), swapped, args.regions.split(",")))
        mask = np.minimum.reduce(masks).clip(0, 1)
        frame = paste_back(frame, swapped, mask, m)
    cv2.imwrite(args.out, frame)
    json.dump({"faces": len(faces)}, sys.stdout)


def raw_embedding(session, rgb, kps):
    """The ArcFace output before its L2 normalisation, on the crop insightface_reference takes."""
    normed = insightface.embed(session, rgb, kps)
    m = insightface.estimate_norm(kps, 112)
    crop = cv2.warpAffine(rgb, m, (112, 112), borderValue=0.0)
    blob = ((crop.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
    raw = session.run(None, {session.get_inputs()[0].name: blob})[0][0]
    assert np.allclose(raw / np.linalg.norm(raw), normed, atol=1e-5)
    return raw


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("swap")
    for a in ("--detector", "--recognizer", "--swapper", "--family", "--source", "--target", "--out",
              "--faces-json"):
        s.add_argument(a, required=True)
    s.add_argument("--converter")
    s.add_argument("--boost", default="0", help="side in pixels, 0 for the model's size, or auto")
    s.add_argument("--mask-types", default="box")
    s.add_argument("--mask-blur", type=float, default=0.3)
    s.add_argument("--mask-padding", default="0,0,0,0")
    s.add_argument("--occluder")
    s.add_argument("--parser")
    s.add_argument("--regions", default="skin,left-eyebrow,right-eyebrow,left-eye,right-eye,glasses,nose,mouth,"
                                         "upper-lip,lower-lip")
    s.add_argument("--landmark-68")
    s.add_argument("--areas", default="upper-face,lower-face,mouth")
    a = sub.add_parser("auto-boost")
    a.add_argument("--family", required=True)
    a.add_argument("--faces-json", required=True)
    b = sub.add_parser("box-mask")
    b.add_argument("--size", type=int, required=True)
    b.add_argument("--mask-blur", type=float, default=0.3)
    b.add_argument("--mask-padding", default="0,0,0,0")
    b.add_argument("--out", required=True)
    args = p.parse_args()
    if args.cmd == "swap":
        swap(args)
    elif args.cmd == "auto-boost":
        faces = json.load(open(args.faces_json))
        json.dump([int(auto_boost(args.family, np.array(f["kps"]))) for f in faces], sys.stdout)
    else:
        padding = [int(v) for v in args.mask_padding.split(",")]
        np.save(args.out, box_mask(args.size, args.mask_blur, padding))


if __name__ == "__main__":
    main()
