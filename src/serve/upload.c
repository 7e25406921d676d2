/* The size of an uploaded image from its header, so the pixel limit is
 * checked before anything is decoded (serve.h). */
#include <stddef.h>

#include "serve/serve.h"

static unsigned be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }
static unsigned long be32(const unsigned char *p) {
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}

int serve_image_dims(const unsigned char *b, size_t n, int *width, int *height) {
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    *width = *height = 0;
    int is_png = n >= 8;
    for (int i = 0; is_png && i < 8; i++) is_png = b[i] == png[i];
    if (is_png) { /* signature, then the IHDR chunk: length 13, "IHDR", width, height */
        if (n < 24 || be32(b + 8) != 13 || b[12] != 'I' || b[13] != 'H' || b[14] != 'D' || b[15] != 'R') return -1;
        unsigned long w = be32(b + 16), h = be32(b + 20);
        if (w == 0 || h == 0 || w > 0x7fffffff || h > 0x7fffffff) return -1;
        *width = (int)w, *height = (int)h;
        return 1;
    }
    if (n < 3 || b[0] != 0xff || b[1] != 0xd8 || b[2] != 0xff) return 0;
    /* JPEG: markers after SOI; each segment but the standalone ones has a
     * 2-byte length; the frame header SOFn holds precision, height, width */
    size_t i = 2;
    while (i + 4 <= n) {
        if (b[i] != 0xff) return -1;
        unsigned m = b[i + 1];
        if (m == 0xff) { /* fill byte */
            i++;
            continue;
        }
        if (m == 0xd8 || m == 0x01 || (m >= 0xd0 && m <= 0xd7)) { /* standalone */
            i += 2;
            continue;
        }
        if (m == 0xd9 || m == 0xda) return -1; /* EOI or a scan before any frame header */
        unsigned len = be16(b + i + 2);
        if (len < 2) return -1;
        int sof = m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
        if (sof) {
            if (len < 7 || i + 9 > n) return -1;
            unsigned h = be16(b + i + 5), w = be16(b + i + 7);
            if (w == 0 || h == 0) return -1; /* height 0 (DNL) is not supported by the decoder either */
            *width = (int)w, *height = (int)h;
            return 2;
        }
        i += 2 + (size_t)len;
    }
    return -1;
}
