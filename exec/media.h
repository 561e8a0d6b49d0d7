/*
 * exec/media.h — media of a workspace: metadata in LMDB (EX_DB_MEDIA "<ws>|med|<id>"), bytes
 * in content-addressed files "<store dir>/media/<sha256[0:2]>/<sha256>" shared by identical
 * uploads (reference count "~blob|<sha256>" in EX_DB_MEDIA; '~' is never in a workspace id).
 *
 * The mime type is sniffed from the bytes (magic numbers: JPEG, PNG, GIF, WebP, MP4/MOV, PDF);
 * a client's claimed mime_type that disagrees is refused ("mime_type: claimed image/png but
 * the content is image/jpeg"); unrecognised content is refused. PNG, GIF and JPEG dimensions
 * are read from their headers, MP4/QuickTime duration and size from moov/mvhd and tkhd.
 *
 * Uploads: inline (data_base64, at most ctx->limits.inline_media_max decoded bytes) or chunked
 * (begin -> append* -> finish; at most ctx->limits.chunk_max per append and
 * ctx->limits.chunked_media_max in total; appends carry their offset, so a retried append is
 * detected). A medium used by a scheduled or publishing post cannot be deleted without
 * "force": true.
 *
 * Object: {id "med_...", workspace_id, sha256, mime_type, kind, size_bytes, width, height,
 *          duration_ms, filename, alt_text, status "ready", version,
 *          created_at, updated_at}.
 * JSON in, JSON out as in exec/workspace.h. Any thread; file writes happen inside the write
 * transaction of the call that needs them, so they are serialised with every other writer.
 */
#ifndef POSTLY_EXEC_MEDIA_H
#define POSTLY_EXEC_MEDIA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "exec/connector.h"
#include "exec/store.h"

/* args {data_base64, filename?, mime_type?, alt_text?, idempotency_key?}. */
pl_rc ex_media_upload(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err);
/* args {filename?, mime_type?, total_bytes, alt_text?} -> {upload_id, ...}. */
pl_rc ex_media_upload_begin(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                            ex_err *err);
/* args {upload_id, offset, data_base64} -> {upload_id, received_bytes, total_bytes}.
 * PL_ERR_CONFLICT when offset is not the bytes received so far (the answer names the right
 * offset); PL_ERR_TOO_LARGE past chunk_max or total_bytes. */
pl_rc ex_media_upload_append(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                             ex_err *err);
/* args {upload_id} -> the medium; PL_ERR_STATE until every byte was appended. The upload
 * record is consumed. */
pl_rc ex_media_upload_finish(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                             ex_err *err);
/* args {media_id} (other arguments are ignored). */
pl_rc ex_media_get(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                   ex_err *err);
/* args {kind?, limit?, cursor?} -> {items, next_cursor}. */
pl_rc ex_media_list(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                    ex_err *err);
/* args {media_id, alt_text?, filename?, expected_version?}. */
pl_rc ex_media_update(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err);
/* args {media_id, force?, expected_version?} -> {id, deleted: true}. PL_ERR_STATE when a
 * scheduled or publishing post uses it and force is not true. */
pl_rc ex_media_delete(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err);

/* Deletes chunked uploads untouched for longer than max_idle_ms (and their temporary files),
 * scanning at most max_scan records from where the previous call stopped (position in
 * EX_DB_META). Run by the scheduler's timer. *removed gets the count. */
pl_rc ex_media_gc(const ex_ctx *ctx, int64_t max_idle_ms, size_t max_scan, size_t *removed);

/* Sniffs bytes: *mime gets a static string, *kind the connector kind; width/height when the
 * header says (0 otherwise). PL_ERR_UNSUPPORTED when unrecognised. */
pl_rc ex_media_sniff(const uint8_t *p, size_t n, const char **mime, ex_media_kind *kind,
                     uint32_t *width, uint32_t *height);

/* Reads an MP4/QuickTime movie's duration (moov/mvhd) and picture size (first trak/tkhd with
 * one) from its boxes. PL_ERR_INVALID when the boxes are missing or malformed (the medium is
 * still accepted, with duration 0 = unknown). */
pl_rc ex_media_mp4_probe(const uint8_t *p, size_t n, uint32_t *duration_ms, uint32_t *w,
                         uint32_t *h);

/* Inside the caller's write transaction: adds / removes the reference index key
 * "<ws>|mref|<medium>|<post>" (EX_DB_MEDIA) for each
 * medium in ids (a JSON array of media ids; missing media are skipped on removal, an error
 * "media_ids: no medium ..." on addition). */
pl_rc ex_media_refs_add(ex_txn *txn, const char *ws, const json_t *ids, const char *post_id,
                        ex_err *err);
pl_rc ex_media_refs_del(ex_txn *txn, const char *ws, const json_t *ids, const char *post_id);

/* Decodes standard or URL-safe base64, padded or not, ignoring nothing (no whitespace).
 * *out is malloc'ed (free()); PL_ERR_TOO_LARGE when the decoded size would exceed max. */
pl_rc ex_base64_decode(const char *in, size_t len, size_t max, uint8_t **out, size_t *outlen);

#endif
