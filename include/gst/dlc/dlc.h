/* SPDX-License-Identifier: MPL-2.0 */
/*
 * gstdlc: reading the faces that dlcdetect attaches to buffers (GstDlcFaceMeta) from C.
 *
 * The functions are exported by the plugin library itself (libgstdlc.so in the GStreamer plugin
 * directory); `pkg-config --cflags --libs gstdlc-1.0` links against it. Link against the very
 * file GStreamer loads the plugin from (the installed one, found through GST_PLUGIN_PATH or the
 * system plugin directory): the dynamic loader then maps it once, and the application and the
 * elements share one meta registration. Two different copies of the plugin in one process
 * cannot both register the meta.
 *
 * Call these while holding a reference to the buffer (in a pad probe, from an appsink sample...).
 * Every function accepts NULL and answers 0 / FALSE for it.
 */

#ifndef __GST_DLC_H__
#define __GST_DLC_H__

#include <gst/gst.h>

G_BEGIN_DECLS

/* Number of landmarks in GstDlcFace.landmarks. */
#define GST_DLC_FACE_N_LANDMARKS 5
/* Length of an ArcFace identity embedding (gst_dlc_buffer_get_face_embedding()). */
#define GST_DLC_FACE_EMBEDDING_LEN 512
/* Number of points of the optional dense landmarks (gst_dlc_buffer_get_face_landmarks_106()). */
#define GST_DLC_FACE_N_LANDMARKS_106 106

/* GstDlcFace.flags bits. */
typedef enum {
  GST_DLC_FACE_FLAG_INFERRED = (1 << 0), /* the detector found this face on this frame */
  GST_DLC_FACE_FLAG_TRACKED = (1 << 1),  /* carried forward by tracking, no detection ran */
  GST_DLC_FACE_FLAG_SWAPPED = (1 << 2),  /* dlcswap replaced this face */
  GST_DLC_FACE_FLAG_ENHANCED = (1 << 3), /* dlcenhance restored this face */
} GstDlcFaceFlags;

/*
 * One face, in the pixel coordinates of the frame it is attached to. 104 bytes; the reserved
 * words are zero and leave room for later fields without changing the size.
 */
typedef struct {
  gfloat x1, y1, x2, y2;                       /* bounding box corners */
  gfloat score;                                /* detection score, 0..1 */
  gfloat landmarks[GST_DLC_FACE_N_LANDMARKS][2]; /* left eye, right eye, nose, left and right
                                                  * mouth corner (image left/right), as x, y */
  guint32 flags;                               /* GstDlcFaceFlags bits */
  guint64 track_id;                            /* stable id of the face's track, 0 = untracked */
  guint32 _reserved[8];
} GstDlcFace;

G_STATIC_ASSERT (sizeof (GstDlcFace) == 104);
G_STATIC_ASSERT (G_STRUCT_OFFSET (GstDlcFace, score) == 16);
G_STATIC_ASSERT (G_STRUCT_OFFSET (GstDlcFace, landmarks) == 20);
G_STATIC_ASSERT (G_STRUCT_OFFSET (GstDlcFace, flags) == 60);
G_STATIC_ASSERT (G_STRUCT_OFFSET (GstDlcFace, track_id) == 64);

/* The GType of the face meta API ("GstDlcFaceMetaAPI"), for gst_buffer_get_meta() and
 * gst_buffer_iterate_meta_filtered(). Call gst_init() first. */
GType gst_dlc_face_meta_api_get_type (void);

/* Number of faces on @buffer; 0 when it carries no face meta. */
guint gst_dlc_buffer_get_face_count (GstBuffer * buffer);

/* Copies face @index of @buffer into @face. FALSE (and @face untouched) when @buffer has no face
 * meta or no face @index. */
gboolean gst_dlc_buffer_get_face (GstBuffer * buffer, guint index, GstDlcFace * face);

/* Copies at most @n_values floats of face @index's L2-normalised identity embedding into
 * @values (which may be NULL to ask for the length). Returns the embedding's full length
 * (GST_DLC_FACE_EMBEDDING_LEN), or 0 when the face has none (no identity model ran). */
guint gst_dlc_buffer_get_face_embedding (GstBuffer * buffer, guint index, gfloat * values,
    guint n_values);

/* Copies at most @n_points (x, y) pairs (2 * @n_points floats) of face @index's 106-point
 * landmarks into @points (which may be NULL to ask for the count). Returns the number of
 * points (GST_DLC_FACE_N_LANDMARKS_106), or 0 when the face has none (no landmark model ran). */
guint gst_dlc_buffer_get_face_landmarks_106 (GstBuffer * buffer, guint index, gfloat * points,
    guint n_points);

G_END_DECLS

#endif /* __GST_DLC_H__ */
