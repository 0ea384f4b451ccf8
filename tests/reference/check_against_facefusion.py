#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Checks tests/reference/facefusion_swapper.py against FaceFusion's own swapper functions
(prepare_source_embedding / prepare_source_frame, balance_source_embedding, prepare_crop_frame,
forward_swap_face, normalize_crop_frame), run on the fixture stand-ins. Not part of `make test`:
it needs a FaceFusion checkout (3.8.1), whose modules it imports and calls; nothing of it is
copied here.

Usage: check_against_facefusion.py FACEFUSION_DIR FIXTURES_DIR
Prints the largest difference per family in 8-bit levels; exits 1 if one exceeds 0.01.
"""
import sys
import types
from pathlib import Path

import numpy as np
import onnxruntime as ort


def main(facefusion_dir, fixtures):
    # Modules FaceFusion imports at load time that its swapper functions never use.
    for name in ("tqdm", "psutil", "scipy", "scipy.ndimage", "gradio"):
        stub = types.ModuleType(name)
        stub.tqdm = object
        sys.modules.setdefault(name, stub)
    sys.path.insert(0, str(facefusion_dir))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import facefusion.processors.modules.face_swapper.core as core
    from facefusion.face_helper import WARP_TEMPLATE_SET
    import facefusion_swapper as reference

    cases = [("inswapper", "inswapper.onnx", None), ("hyperswap", "hyperswap_256.onnx", None),
             ("simswap", "simswap_256.onnx", "crossface_simswap.onnx"),
             ("simswap_unofficial_512", "simswap_unofficial_512.onnx", "crossface_simswap.onnx"),
             ("ghost", "ghost_256.onnx", "crossface_ghost.onnx"),
             ("hififace", "hififace_256.onnx", "crossface_hififace.onnx"),
             ("blendswap", "blendswap_256.onnx", None), ("uniface", "uniface_256.onnx", None)]
    source_templates = {"blendswap": "arcface_112_v2", "uniface": "ffhq_512"}

    def session(name):
        return ort.InferenceSession(str(fixtures / name), providers=["CPUExecutionProvider"])

    class Face:
        pass

    core.state_manager.get_item = lambda key: {"face_swapper_weight": 0.5}[key]
    rng = np.random.default_rng(1)
    worst = 0.0
    for family, model, converter in cases:
        model_type, size, mean, std = reference.FAMILIES[family]
        options = {"type": model_type, "mean": mean, "standard_deviation": std,
                   "sources": {"face_swapper": {"path": str(fixtures / model)}}}
        pool = {"face_swapper": session(model)}
        if converter:
            pool["embedding_converter"] = session(converter)
        core.get_model_options = lambda o=options: o
        core.get_inference_pool = lambda p=pool: p
        source, target = Face(), Face()
        source.embedding = (rng.standard_normal(512) * 0.9).astype(np.float32)
        source.embedding_norm = source.embedding / np.linalg.norm(source.embedding)
        target.embedding = (rng.standard_normal(512) * 0.9).astype(np.float32)
        source_frame = None
        if family in reference.SOURCE_CROP:
            # The source picture is the aligned crop itself: FaceFusion's warp leaves it as it is.
            side = reference.SOURCE_CROP[family]
            crop_rgb = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            source_frame = np.ascontiguousarray(crop_rgb[:, :, ::-1])
            points = WARP_TEMPLATE_SET[source_templates[family]] * side
            source.landmark_set = {"5/68": points.astype(np.float32)}
            source_tensor = reference.source_picture_tensor(crop_rgb)
        else:
            converter_path = str(fixtures / converter) if converter else None
            source_tensor = reference.source_tensor(family, str(fixtures / model), converter_path, source.embedding)
        tile_rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        tile_bgr = np.ascontiguousarray(tile_rgb[:, :, ::-1])
        prepared = core.prepare_crop_frame(tile_bgr)
        theirs = core.normalize_crop_frame(core.forward_swap_face(source, target, source_frame, prepared))[:, :, ::-1]
        ours = reference.swap_tile(family, str(fixtures / model), source_tensor, tile_rgb)
        diff = float(np.abs(theirs - ours).max())
        worst = max(worst, diff)
        print(f"{family:24s} max |FaceFusion − reference| = {diff:.2e} levels")
    return 0 if worst <= 0.01 else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
