/* The public image helpers of include/oir.h: what a C user needs to feed
 * oir_edit (8-bit RGB and masks at the model's size) and to save its result,
 * over the same loaders, crops and resizes the CLI uses. */
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "oir.h"

/* 8-bit bytes of a decoded [0, 1] image (exact for decoded 8-bit files). */
static unsigned char *to_bytes(const image *img, int binary, oir_error *err) {
    size_t n = (size_t)img->width * img->height * img->channels;
    unsigned char *out = malloc(n ? n : 1);
    if (!out) {
        oir_fail(err, OIR_E_NOMEM, "out of memory for a %dx%d image", img->width, img->height);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        float v = img->data[i];
        out[i] = binary ? (v > 0.5f) : (unsigned char)(v * 255.0f + 0.5f);
    }
    return out;
}

int oir_image_load(const char *path, int size, unsigned char **rgb_out, int *width_out,
                   int *height_out, oir_error *err) {
    *rgb_out = NULL;
    image img = {0};
    int rc = size > 0 ? image_load_square(&img, path, size, err) : image_load(&img, path, err);
    if (rc) return rc;
    *rgb_out = to_bytes(&img, 0, err);
    if (*rgb_out) {
        if (width_out) *width_out = img.width;
        if (height_out) *height_out = img.height;
    }
    rc = *rgb_out ? OIR_OK : err->code;
    image_free(&img);
    return rc;
}

int oir_mask_load(const char *path, int size, unsigned char **mask_out, oir_error *err) {
    *mask_out = NULL;
    if (size <= 0) return oir_fail(err, OIR_E_ARG, "%s: mask size must be > 0 (got %d)", path, size);
    image m = {0};
    int rc = mask_load_square(&m, path, size, err);
    if (rc) return rc;
    *mask_out = to_bytes(&m, 1, err);
    rc = *mask_out ? OIR_OK : err->code;
    image_free(&m);
    return rc;
}

int oir_image_save_png(const char *path, const unsigned char *rgb, int width, int height,
                       oir_error *err) {
    image img = {0};
    int rc = image_alloc(&img, width, height, 3, err);
    if (rc) return rc;
    for (size_t i = 0; i < (size_t)width * height * 3; i++) img.data[i] = rgb[i] / 255.0f;
    rc = image_save_png(&img, path, err);
    image_free(&img);
    return rc;
}

void oir_free(void *p) { free(p); }
