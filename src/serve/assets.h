/* The page of `oir serve` (web/index.html, app.js, style.css), compiled into
 * the binary: the build runs src/serve/gen/embed.c over web/ and links the C
 * file it writes, so the server reads no file and needs no network to serve
 * its page. */
#ifndef OIR_SERVE_ASSETS_H
#define OIR_SERVE_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *path;          /* "/index.html" */
    const char *type;          /* "text/html; charset=utf-8" */
    const unsigned char *data;
    size_t len;
} serve_asset;

extern const serve_asset serve_assets[];
extern const int serve_n_assets;

#endif
