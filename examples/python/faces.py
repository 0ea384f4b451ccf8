#!/usr/bin/python3
# SPDX-License-Identifier: MPL-2.0
"""Prints the faces dlcdetect finds in a video or picture, read the two ways that need no gstdlc
header or library, only GStreamer's own Python bindings (PyGObject):

- `message` lines: dlcdetect's element messages on the bus (post-messages=true), in frame pixels;
- `roi` lines: the GstVideoRegionOfInterestMeta (type "face") that dlcdetect attaches to every
  buffer, one per face with ids 0..n-1, read in a pad probe: the rectangle, and the normalised
  box, score, landmarks and track id from its "detection", "landmarks" and "object_id" params,
  converted back to frame pixels.

Errors and warnings on the bus (e.g. "running on the CPU instead") go to standard error.

    faces.py FILE [DLCDETECT-PROPERTY=VALUE ...]
    faces.py portrait.png model-file=det_10g.onnx

Needs Debian's python3-gi, python3-gst-1.0, gir1.2-gstreamer-1.0 and gir1.2-gst-plugins-base-1.0
(run it with /usr/bin/python3, not a virtual environment without them).
"""

import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstVideo  # noqa: E402

# The probe prints from the streaming thread, the bus loop from the main thread: whole lines only.
print_lock = threading.Lock()


def emit(lines):
    with print_lock:
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()


def describe(box, score, track_id, landmarks):
    """One face as the `message` and `roi` lines print it (frame pixels)."""
    points = " ".join(f"{x:.3f},{y:.3f}" for x, y in landmarks)
    return (
        f"box {box[0]:.3f} {box[1]:.3f} {box[2]:.3f} {box[3]:.3f} score {score:.3f} "
        f"track {track_id} landmarks {points}"
    )


def pairs(values):
    values = list(values)
    return list(zip(values[0::2], values[1::2]))


def print_message_faces(structure):
    """The faces of one `dlcdetect` element message."""
    pts = structure["timestamp"]
    faces = structure.get_value("faces")
    lines = [f"message pts {pts}: {len(faces)} faces"]
    for index, face in enumerate(faces):
        x, y = face["x"], face["y"]
        box = (x, y, x + face["width"], y + face["height"])
        landmarks = pairs(face["landmarks"])
        lines.append(f"  message pts {pts} face {index}: {describe(box, face['score'], face['track-id'], landmarks)}")
    emit(lines)


def print_roi_faces(pad, info, roi_api):
    """The faces of one buffer, from its ROI metas (a pad probe)."""
    buffer = info.get_buffer()
    video = GstVideo.VideoInfo.new_from_caps(pad.get_current_caps())
    width, height = video.width, video.height
    # PyGObject cannot iterate a buffer's metas; dlcdetect numbers its ROIs 0..n-1 instead.
    rois = []
    for index in range(buffer.get_n_meta(roi_api)):
        roi = GstVideo.buffer_get_video_region_of_interest_meta_id(buffer, index)
        if roi is not None and GLib.quark_to_string(roi.roi_type) == "face":
            rois.append(roi)
    lines = [f"roi pts {buffer.pts}: {len(rois)} faces"]
    for index, roi in enumerate(rois):
        detection = roi.get_param("detection")
        box = (
            detection["x_min"] * width,
            detection["y_min"] * height,
            detection["x_max"] * width,
            detection["y_max"] * height,
        )
        landmarks = [(x * width, y * height) for x, y in pairs(roi.get_param("landmarks")["points"])]
        track_id = roi.get_param("object_id")["id"]
        lines.append(
            f"  roi pts {buffer.pts} face {index}: rect {roi.x} {roi.y} {roi.w} {roi.h} "
            f"{describe(box, detection['confidence'], track_id, landmarks)}"
        )
    emit(lines)
    return Gst.PadProbeReturn.OK


def main(argv):
    Gst.init(None)
    files = [a for a in argv[1:] if "=" not in a]
    properties = [a for a in argv[1:] if "=" in a]
    if len(files) != 1:
        print("usage: faces.py FILE [DLCDETECT-PROPERTY=VALUE ...]", file=sys.stderr)
        return 2
    if Gst.ElementFactory.find("dlcdetect") is None:
        print("faces.py: dlcdetect not found: install the dlc plugin or set GST_PLUGIN_PATH", file=sys.stderr)
        return 2

    pipeline = Gst.Pipeline.new("faces")
    source = Gst.ElementFactory.make("filesrc")
    source.set_property("location", files[0])
    decode = Gst.ElementFactory.make("decodebin")
    convert = Gst.ElementFactory.make("videoconvert")
    detect = Gst.ElementFactory.make("dlcdetect")
    sink = Gst.ElementFactory.make("fakesink")
    detect.set_property("post-messages", True)
    for assignment in properties:
        name, value = assignment.split("=", 1)
        if detect.find_property(name) is None:
            print(f"faces.py: dlcdetect has no property '{name}' (gst-inspect-1.0 dlcdetect lists them)", file=sys.stderr)
            return 2
        # Parsed as gst-launch-1.0 would (numbers, booleans, enums by nick).
        Gst.util_set_object_arg(detect, name, value)
    for element in (source, decode, convert, detect, sink):
        pipeline.add(element)
    source.link(decode)
    convert.link(detect)
    detect.link(sink)

    def on_pad_added(_decode, pad):
        sink_pad = convert.get_static_pad("sink")
        caps = pad.get_current_caps() or pad.query_caps(None)
        if not sink_pad.is_linked() and caps.get_structure(0).get_name().startswith("video/"):
            pad.link(sink_pad)

    decode.connect("pad-added", on_pad_added)
    roi_api = GstVideo.VideoRegionOfInterestMeta.get_info().api
    sink.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, print_roi_faces, roi_api)

    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    status = 0
    wanted = Gst.MessageType.EOS | Gst.MessageType.ERROR | Gst.MessageType.WARNING | Gst.MessageType.ELEMENT
    while True:
        message = bus.timed_pop_filtered(Gst.CLOCK_TIME_NONE, wanted)
        if message.type == Gst.MessageType.ELEMENT:
            structure = message.get_structure()
            if structure is not None and structure.get_name() == "dlcdetect":
                print_message_faces(structure)
            continue
        if message.type == Gst.MessageType.WARNING:
            # A warning says the run goes on in a way the user did not ask for (e.g. on the CPU
            # instead of CUDA): show it, and go on.
            warning, debug = message.parse_warning()
            with print_lock:
                print(f"faces.py: warning: {message.src.get_name()}: {warning.message}\n{debug or ''}", file=sys.stderr)
            continue
        if message.type == Gst.MessageType.ERROR:
            error, debug = message.parse_error()
            print(f"faces.py: {message.src.get_name()}: {error.message}\n{debug or ''}", file=sys.stderr)
            status = 1
        break
    pipeline.set_state(Gst.State.NULL)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
