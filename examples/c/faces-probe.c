/* SPDX-License-Identifier: MPL-2.0 */
/*
 * faces-probe: runs `filesrc ! decodebin ! videoconvert ! dlcdetect ! fakesink` (or
 * `videotestsrc` when no file is given) and prints the faces of every frame, read from the
 * buffers in a pad probe through gst/dlc/dlc.h.
 *
 *   faces-probe [FILE] [DLCDETECT-PROPERTY=VALUE ...]
 *   faces-probe portrait.png model-file=det_10g.onnx threshold=0.6
 *
 * Without model-file, dlcdetect looks in its model directory ($DLC_MODELS_DIR, see the README).
 * Build: gcc faces-probe.c -o faces-probe $(pkg-config --cflags --libs gstdlc-1.0)
 */

#include <string.h>

#include <gst/dlc/dlc.h>

typedef struct {
  guint frame;
} ProbeState;

static void
print_flags (guint32 flags)
{
  static const struct {
    guint32 bit;
    const gchar *name;
  } names[] = {
    {GST_DLC_FACE_FLAG_INFERRED, "inferred"},
    {GST_DLC_FACE_FLAG_TRACKED, "tracked"},
    {GST_DLC_FACE_FLAG_SWAPPED, "swapped"},
    {GST_DLC_FACE_FLAG_ENHANCED, "enhanced"},
  };
  gboolean first = TRUE;

  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    if (flags & names[i].bit) {
      g_print ("%s%s", first ? "" : "|", names[i].name);
      first = FALSE;
    }
  }
  if (first)
    g_print ("none");
}

static GstPadProbeReturn
on_buffer (G_GNUC_UNUSED GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  ProbeState *state = user_data;
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  guint n_faces;

  if (gst_buffer_get_meta (buffer, gst_dlc_face_meta_api_get_type ()) == NULL) {
    g_print ("frame %u pts %" GST_TIME_FORMAT ": no face meta\n", state->frame,
        GST_TIME_ARGS (GST_BUFFER_PTS (buffer)));
    state->frame++;
    return GST_PAD_PROBE_OK;
  }

  n_faces = gst_dlc_buffer_get_face_count (buffer);
  g_print ("frame %u pts %" GST_TIME_FORMAT ": %u faces\n", state->frame,
      GST_TIME_ARGS (GST_BUFFER_PTS (buffer)), n_faces);
  for (guint i = 0; i < n_faces; i++) {
    GstDlcFace face;
    guint embedding_len;

    if (!gst_dlc_buffer_get_face (buffer, i, &face))
      continue;
    g_print ("  face %u: box %.3f %.3f %.3f %.3f score %.3f track %" G_GUINT64_FORMAT
        " flags ", i, face.x1, face.y1, face.x2, face.y2, face.score, face.track_id);
    print_flags (face.flags);
    g_print (" landmarks");
    for (guint l = 0; l < GST_DLC_FACE_N_LANDMARKS; l++)
      g_print (" %.3f,%.3f", face.landmarks[l][0], face.landmarks[l][1]);
    embedding_len = gst_dlc_buffer_get_face_embedding (buffer, i, NULL, 0);
    if (embedding_len > 0)
      g_print (" embedding %u", embedding_len);
    g_print ("\n");
  }
  state->frame++;
  return GST_PAD_PROBE_OK;
}

/* decodebin's video pad appears once the stream is typed: link it to the converter. */
static void
on_pad_added (G_GNUC_UNUSED GstElement * decodebin, GstPad * pad, gpointer user_data)
{
  GstElement *convert = user_data;
  GstPad *sink = gst_element_get_static_pad (convert, "sink");
  GstCaps *caps = gst_pad_get_current_caps (pad);
  if (caps == NULL)
    caps = gst_pad_query_caps (pad, NULL);

  if (!gst_pad_is_linked (sink)
      && g_str_has_prefix (gst_structure_get_name (gst_caps_get_structure (caps, 0)),
          "video/")) {
    if (gst_pad_link (pad, sink) != GST_PAD_LINK_OK)
      g_printerr ("faces-probe: cannot link the decoded video to dlcdetect\n");
  }
  gst_caps_unref (caps);
  gst_object_unref (sink);
}

/* Sets `name=value` on dlcdetect, refusing unknown properties and unparsable values. */
static gboolean
set_property (GstElement * element, const gchar * assignment)
{
  gchar **parts = g_strsplit (assignment, "=", 2);
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (element), parts[0]);
  GValue value = G_VALUE_INIT;
  gboolean ok = FALSE;

  if (pspec == NULL) {
    g_printerr ("faces-probe: dlcdetect has no property '%s' (gst-inspect-1.0 dlcdetect lists them)\n",
        parts[0]);
  } else {
    g_value_init (&value, G_PARAM_SPEC_VALUE_TYPE (pspec));
    if (gst_value_deserialize_with_pspec (&value, parts[1], pspec)) {
      g_object_set_property (G_OBJECT (element), parts[0], &value);
      ok = TRUE;
    } else {
      g_printerr ("faces-probe: '%s' is not a valid value for dlcdetect's %s (a %s)\n", parts[1],
          parts[0], g_type_name (G_PARAM_SPEC_VALUE_TYPE (pspec)));
    }
    g_value_unset (&value);
  }
  g_strfreev (parts);
  return ok;
}

int
main (int argc, char **argv)
{
  const gchar *file = NULL;
  GstElement *pipeline, *detect, *convert, *sink;
  GstPad *sink_pad;
  GstBus *bus;
  GstMessage *msg;
  ProbeState state = { 0 };
  int status = 0;

  gst_init (&argc, &argv);

  pipeline = gst_pipeline_new ("faces-probe");
  convert = gst_element_factory_make ("videoconvert", NULL);
  detect = gst_element_factory_make ("dlcdetect", NULL);
  sink = gst_element_factory_make ("fakesink", NULL);
  if (convert == NULL || detect == NULL || sink == NULL) {
    g_printerr ("faces-probe: element %s missing: install gstreamer1.0-plugins-base and the "
        "dlc plugin (or point GST_PLUGIN_PATH at the folder of libgstdlc.so)\n",
        convert == NULL ? "videoconvert" : detect == NULL ? "dlcdetect" : "fakesink");
    return 2;
  }

  for (int i = 1; i < argc; i++) {
    if (strchr (argv[i], '=') != NULL) {
      if (!set_property (detect, argv[i]))
        return 2;
    } else if (file == NULL) {
      file = argv[i];
    } else {
      g_printerr ("usage: faces-probe [FILE] [DLCDETECT-PROPERTY=VALUE ...]\n");
      return 2;
    }
  }

  gst_bin_add_many (GST_BIN (pipeline), convert, detect, sink, NULL);
  if (!gst_element_link_many (convert, detect, sink, NULL)) {
    g_printerr ("faces-probe: cannot link videoconvert ! dlcdetect ! fakesink\n");
    return 2;
  }
  if (file != NULL) {
    GstElement *src = gst_element_factory_make ("filesrc", NULL);
    GstElement *decode = gst_element_factory_make ("decodebin", NULL);
    g_object_set (src, "location", file, NULL);
    gst_bin_add_many (GST_BIN (pipeline), src, decode, NULL);
    gst_element_link (src, decode);
    g_signal_connect (decode, "pad-added", G_CALLBACK (on_pad_added), convert);
  } else {
    GstElement *src = gst_element_factory_make ("videotestsrc", NULL);
    g_object_set (src, "num-buffers", 30, NULL);
    gst_bin_add (GST_BIN (pipeline), src);
    gst_element_link (src, convert);
  }

  sink_pad = gst_element_get_static_pad (sink, "sink");
  gst_pad_add_probe (sink_pad, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, &state, NULL);
  gst_object_unref (sink_pad);

  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  bus = gst_element_get_bus (pipeline);
  msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *err = NULL;
    gchar *debug = NULL;
    gst_message_parse_error (msg, &err, &debug);
    g_printerr ("faces-probe: %s: %s\n%s\n", GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)), err->message,
        debug ? debug : "");
    g_clear_error (&err);
    g_free (debug);
    status = 1;
  }
  gst_message_unref (msg);
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  return status;
}
