/* JSON from files, parsed once and checked the same way everywhere: the
 * safetensors header, config.json / model_index.json / scheduler and
 * preprocessor configs, shard indexes.
 *
 * cJSON alone accepts things a reader must not: the same key twice in an
 * object (cJSON keeps both, and code that counts the keys then looks each
 * one up reads the first twice), numbers out of double range (1e999 parses
 * as inf) and nesting up to its compile-time limit. json_parse refuses them
 * all, naming the file and the key:
 *   "unet/config.json: key \"in_channels\" appears twice (in the top-level object)"
 *   "x.safetensors: header: key \"__metadata__\" appears twice (in the top-level object)"
 * Duplicate keys are found by sorting each object's keys: O(n log n), so a
 * 100 MB safetensors header with a million keys is still checked quickly. */
#ifndef OIR_IO_JSON_H
#define OIR_IO_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "core/error.h"

#define JSON_MAX_DEPTH 64                    /* real configs nest 3 deep */
#define JSON_MAX_CONFIG_BYTES ((size_t)16 << 20) /* config files; headers have their own */

/* Parses len bytes of text as one JSON value followed only by whitespace or
 * NUL bytes; refuses duplicate keys in any object, numbers that are not
 * finite doubles, nesting deeper than JSON_MAX_DEPTH. `what` starts every
 * message (the file name). OIR_E_FORMAT on any of these; *out NULL then. */
int json_parse(cJSON **out, const char *text, size_t len, const char *what, oir_error *err);

/* Reads path (a regular file of at most max_bytes, see io/file.h) and
 * json_parse-s it; the document must be a JSON object. */
int json_read_object(cJSON **out, const char *path, size_t max_bytes, oir_error *err);

#endif
