#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Independent reference implementation of the face pipeline, written from
../shared/docs/model-contracts.md with OpenCV and NumPy (as InsightFace and Deep-Live-Cam do it),
so that tests can compare gstdlc's Rust implementation against it.

Commands (all images are read and written as RGB PNG/JPEG files; JSON goes to stdout):
  detect  --model M --image I [--det-size 640] [--threshold 0.5]
  embed   --detector D --recognizer R --image I            (embedding of the largest face)
  swap    --detector D --recognizer R --swapper S --source SRC --target TGT --out OUT
          [--many] [--mask insightface|ellipse] [--faces-json F]
  enhance --enhancer E --faces-json F --target TGT --out OUT [--blend 0.8] [--fidelity 0.5]
          [--family gfpgan|gpen|codeformer] [--size 512]
  compose --out OUT --size WxH --place IMAGE:X:Y:SCALE:ANGLE [--place ...]
          (test input: pictures scaled and rotated about their centre, pasted at X,Y on grey)
--faces-json gives the faces to use (a JSON list of {"bbox": [...], "kps": [[x,y]*5]}) instead of
running the detector, so that a test can hold the faces fixed.
"""
import argparse
import json
import sys

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)
FFHQ_512 = np.array([[192.98138, 239.94708], [318.90277, 240.19366], [256.63416, 314.01935],
                     [201.26117, 371.41043], [313.08905, 371.15118]], dtype=np.float32)


def session(path):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def read_rgb(path):
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        sys.exit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_rgb(path, rgb):
    cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


# ---- detection (SCRFD) -------------------------------------------------------------------------
def nms(dets, thresh):
    x1, y1, x2, y2, scores = dets[:, 0], dets[:, 1], dets[:, 2], dets[:, 3], dets[:, 4]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        w = np.maximum(0.0, xx2 - xx1 + 1)
        h = np.maximum(0.0, yy2 - yy1 + 1)
        inter = w * h
        ovr = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[np.where(ovr <= thresh)[0] + 1]
    return keep


def detect(sess, img, det_size=640, threshold=0.5, nms_thresh=0.4):
    inp = sess.get_inputs()[0]
    fixed = inp.shape[2] if isinstance(inp.shape[2], int) else None
    size = fixed or det_size
    h, w = img.shape[:2]
    if h / w > 1.0:
        new_h = size
        new_w = int(new_h / (h / w))
    else:
        new_w = size
        new_h = int(new_w * (h / w))
    det_scale = new_h / h
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(img, (new_w, new_h))
    blob = ((canvas.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None]
    outs = sess.run(None, {inp.name: blob})
    n = len(outs)
    strides, anchors, has_kps = {6: ([8, 16, 32], 2, False), 9: ([8, 16, 32], 2, True),
                                 10: ([8, 16, 32, 64, 128], 1, False), 15: ([8, 16, 32, 64, 128], 1, True)}[n]
    fmc = len(strides)
    scores_all, boxes_all, kps_all = [], [], []
    for idx, s in enumerate(strides):
        scores = outs[idx].reshape(-1)
        boxes = outs[idx + fmc].reshape(-1, 4) * s
        gh, gw = size // s, size // s
        centers = np.stack(np.mgrid[:gh, :gw][::-1], axis=-1).astype(np.float32)
        centers = (centers * s).reshape(-1, 2)
        if anchors > 1:
            centers = np.stack([centers] * anchors, axis=1).reshape(-1, 2)
        pos = np.where(scores >= threshold)[0]
        b = np.stack([centers[:, 0] - boxes[:, 0], centers[:, 1] - boxes[:, 1],
                      centers[:, 0] + boxes[:, 2], centers[:, 1] + boxes[:, 3]], axis=-1)
        scores_all.append(scores[pos])
        boxes_all.append(b[pos])
        if has_kps:
            k = outs[idx + 2 * fmc].reshape(-1, 10) * s
            pts = np.stack([centers[:, i % 2] + k[:, i] for i in range(10)], axis=-1).reshape(-1, 5, 2)
            kps_all.append(pts[pos])
    scores = np.concatenate(scores_all)
    boxes = np.concatenate(boxes_all) / det_scale
    order = scores.argsort()[::-1]
    dets = np.hstack((boxes, scores[:, None])).astype(np.float32)[order]
    keep = nms(dets, nms_thresh)
    faces = []
    kps = (np.concatenate(kps_all) / det_scale)[order] if has_kps else None
    for i in keep:
        face = {"bbox": dets[i, :4].tolist(), "score": float(dets[i, 4])}
        if kps is not None:
            face["kps"] = kps[i].tolist()
        faces.append(face)
    return faces


# ---- alignment ---------------------------------------------------------------------------------
def umeyama(src, dst):
    """Least-squares similarity (skimage SimilarityTransform.estimate), 2x3."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n = src.shape[0]
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_d, dst_d = src - src_mean, dst - dst_mean
    a = dst_d.T @ src_d / n
    d = np.ones(2)
    if np.linalg.det(a) < 0:
        d[1] = -1
    u, s, vt = np.linalg.svd(a)
    r = u @ np.diag(d) @ vt
    scale = (s * d).sum() / src_d.var(0).sum()
    t = dst_mean - scale * (r @ src_mean)
    return np.hstack([scale * r, t[:, None]])


def arcface_template(size):
    if size % 112 == 0:
        ratio, diff_x = size / 112.0, 0.0
    else:
        ratio, diff_x = size / 128.0, 8.0 * size / 128.0
    t = ARCFACE_112 * ratio
    t[:, 0] += diff_x
    return t


def estimate_norm(kps, size):
    return umeyama(kps, arcface_template(size))


# ---- recognition -------------------------------------------------------------------------------
def embed(sess, img, kps):
    m = estimate_norm(kps, 112)
    crop = cv2.warpAffine(img, m, (112, 112), borderValue=0.0)
    blob = ((crop.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
    e = sess.run(None, {sess.get_inputs()[0].name: blob})[0][0]
    return e / np.linalg.norm(e)


def largest(faces):
    return max(faces, key=lambda f: (f["bbox"][2] - f["bbox"][0]) * (f["bbox"][3] - f["bbox"][1]))


# ---- swap --------------------------------------------------------------------------------------
def paste_insightface(target, fake, m):
    h, w = target.shape[:2]
    im = cv2.invertAffineTransform(m)
    white = np.full((fake.shape[0], fake.shape[1]), 255, dtype=np.float32)
    fake_w = cv2.warpAffine(fake, im, (w, h), borderValue=0.0)
    white = cv2.warpAffine(white, im, (w, h), borderValue=0.0)
    white[white > 20] = 255
    rows, cols = np.where(white == 255)
    if rows.size == 0:
        return target
    mask_size = int(np.sqrt((rows.max() - rows.min()) * (cols.max() - cols.min())))
    k = max(mask_size // 10, 10)
    mask = cv2.erode(white, np.ones((k, k), np.uint8), iterations=1)
    k = max(mask_size // 20, 5)
    mask = cv2.GaussianBlur(mask, (2 * k + 1, 2 * k + 1), 0)
    mask = (mask / 255)[:, :, None]
    return (mask * fake_w + (1 - mask) * target.astype(np.float32)).astype(np.uint8)


def paste_ellipse(target, fake, m):
    h, w = target.shape[:2]
    im = cv2.invertAffineTransform(m)
    mask = np.zeros((128, 128), dtype=np.float32)
    cv2.ellipse(mask, (64, 64), (56, 56), 0, 0, 360, 255, -1)
    mask = cv2.GaussianBlur(mask, (31, 31), 12)
    fake_w = cv2.warpAffine(fake, im, (w, h), borderValue=0.0)
    mask_w = cv2.warpAffine(mask, im, (w, h), borderValue=0.0)[:, :, None] / 255
    return (mask_w * fake_w + (1 - mask_w) * target.astype(np.float32)).astype(np.uint8)


def swap(args):
    det, rec, swp = session(args.detector), session(args.recognizer), session(args.swapper)
    emap = numpy_helper.to_array(onnx.load(args.swapper).graph.initializer[-1]).astype(np.float32)
    source = read_rgb(args.source)
    src_face = largest([f for f in detect(det, source) if "kps" in f])
    latent = embed(rec, source, np.array(src_face["kps"])).reshape(1, -1) @ emap
    latent /= np.linalg.norm(latent)
    target = read_rgb(args.target)
    faces = json.load(open(args.faces_json)) if args.faces_json else detect(det, target)
    if not args.many:
        faces = [largest(faces)]
    inputs = {i.name: i for i in swp.get_inputs()}
    dtype = np.float16 if inputs["target"].type == "tensor(float16)" else np.float32
    out = target.copy()
    for face in faces:
        m = estimate_norm(np.array(face["kps"]), 128)
        crop = cv2.warpAffine(out, m, (128, 128), borderValue=0.0)
        blob = (crop.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        pred = swp.run(None, {"target": blob.astype(dtype), "source": latent.astype(dtype)})[0]
        fake = np.clip(255 * pred.astype(np.float32).transpose(0, 2, 3, 1)[0], 0, 255).astype(np.uint8)
        out = paste_ellipse(out, fake, m) if args.mask == "ellipse" else paste_insightface(out, fake, m)
    write_rgb(args.out, out)
    json.dump({"faces": len(faces)}, sys.stdout)


# ---- enhance -----------------------------------------------------------------------------------
def ramp_mask(size):
    r = max(1, int(size * 0.05))
    idx = np.arange(size)
    ramp = np.minimum(1.0, (np.minimum(idx, size - 1 - idx) + 1) / r)
    return np.minimum(ramp[None, :], ramp[:, None]).astype(np.float32)


def enhance(args):
    sess = session(args.enhancer)
    target = read_rgb(args.target)
    faces = json.load(open(args.faces_json))
    size = args.size
    if args.family == "gpen" and size == 256:
        template = arcface_template(128) * 2.0
    else:
        template = FFHQ_512 * (size / 512.0)
    out = target.copy()
    h, w = out.shape[:2]
    for face in faces:
        m = umeyama(np.array(face["kps"]), template)
        crop = cv2.warpAffine(out, m, (size, size), borderValue=0.0)
        blob = (crop.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        feeds = {sess.get_inputs()[0].name: blob}
        if args.family == "codeformer":
            feeds["weight"] = np.array([args.fidelity], dtype=np.float64)
        pred = sess.run(None, feeds)[0][0].transpose(1, 2, 0)
        restored = ((np.clip(pred, -1, 1) + 1) * 127.5)
        if restored.shape[0] != size:
            restored = cv2.resize(restored, (size, size), interpolation=cv2.INTER_AREA)
        restored = np.round(restored).astype(np.uint8)
        im = cv2.invertAffineTransform(m)
        fake_w = cv2.warpAffine(restored, im, (w, h), borderValue=0.0)
        mask_w = cv2.warpAffine(ramp_mask(size), im, (w, h), borderValue=0.0)[:, :, None] * args.blend
        out = (mask_w * fake_w + (1 - mask_w) * out.astype(np.float32)).astype(np.uint8)
    write_rgb(args.out, out)


def compose(args):
    w, h = (int(v) for v in args.size.split("x"))
    canvas = np.full((h, w, 3), 96, dtype=np.uint8)
    for place in args.place:
        path, x, y, scale, angle = place.rsplit(":", 4)
        img = read_rgb(path)
        ih, iw = img.shape[:2]
        m = cv2.getRotationMatrix2D((iw / 2, ih / 2), float(angle), float(scale))
        m[0, 2] += float(x) - iw / 2 + iw * float(scale) / 2
        m[1, 2] += float(y) - ih / 2 + ih * float(scale) / 2
        warped = cv2.warpAffine(img, m, (w, h), borderValue=0)
        inside = cv2.warpAffine(np.full((ih, iw), 255, np.uint8), m, (w, h), borderValue=0)
        canvas[inside > 0] = warped[inside > 0]
    write_rgb(args.out, canvas)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("detect")
    d.add_argument("--model", required=True)
    d.add_argument("--image", required=True)
    d.add_argument("--det-size", type=int, default=640)
    d.add_argument("--threshold", type=float, default=0.5)
    e = sub.add_parser("embed")
    for a in ("--detector", "--recognizer", "--image"):
        e.add_argument(a, required=True)
    s = sub.add_parser("swap")
    for a in ("--detector", "--recognizer", "--swapper", "--source", "--target", "--out"):
        s.add_argument(a, required=True)
    s.add_argument("--many", action="store_true")
    s.add_argument("--mask", default="insightface")
    s.add_argument("--faces-json")
    n = sub.add_parser("enhance")
    for a in ("--enhancer", "--faces-json", "--target", "--out"):
        n.add_argument(a, required=True)
    n.add_argument("--blend", type=float, default=0.8)
    n.add_argument("--fidelity", type=float, default=0.5)
    n.add_argument("--family", default="gfpgan")
    n.add_argument("--size", type=int, default=512)
    c = sub.add_parser("compose")
    c.add_argument("--out", required=True)
    c.add_argument("--size", required=True)
    c.add_argument("--place", action="append", required=True)
    args = p.parse_args()
    if args.cmd == "detect":
        faces = detect(session(args.model), read_rgb(args.image), args.det_size, args.threshold)
        json.dump(faces, sys.stdout)
    elif args.cmd == "embed":
        img = read_rgb(args.image)
        face = largest(detect(session(args.detector), img))
        json.dump(embed(session(args.recognizer), img, np.array(face["kps"])).tolist(), sys.stdout)
    elif args.cmd == "swap":
        swap(args)
    elif args.cmd == "compose":
        compose(args)
    else:
        enhance(args)


if __name__ == "__main__":
    main()
