/* Fuzz target: image and mask files.
 *
 * The input is a whole file (PNG, JPEG, or anything: the format comes from
 * the magic bytes). Covers image_load (libpng and libjpeg decoding through
 * our error/limit handling, 16-bit, palette, gray, alpha, interlaced,
 * progressive), the load_512 geometry on what decoded (center crop + Pillow
 * BICUBIC resize, NEAREST resize, tensor conversion), mask_load_square and
 * mask_resize_nearest (the mask path of `oir edit`), and mask_parse_box /
 * mask_from_box on the input's first bytes as a box string. Invariants: a
 * decoded image has 3 channels, a size within the limits and values in
 * [0, 1]; a mask holds only 0 and 1. */
#include "fuzz_util.h"

#include "io/image.h"

/* Larger decoded images skip the extra resizes and the second (mask) decode,
 * to keep one input well under libFuzzer's timeout. */
#define FUZZ_IMG_MAX_EXTRA (1u << 18)

static void fuzz_img_check(const image *img, int channels, int binary) {
    FUZZ_ASSERT(img->data && img->channels == channels);
    FUZZ_ASSERT(img->width > 0 && img->height > 0 && img->width <= IMAGE_MAX_SIDE &&
                img->height <= IMAGE_MAX_SIDE);
    size_t n = (size_t)img->width * img->height * channels;
    FUZZ_ASSERT(n <= (size_t)IMAGE_MAX_PIXELS * channels);
    size_t step = n > (1u << 16) ? n / (1u << 16) | 1 : 1; /* a sample of big images */
    for (size_t i = 0; i < n; i += step) {
        float v = img->data[i];
        FUZZ_ASSERT(binary ? (v == 0.0f || v == 1.0f) : (v >= 0.0f && v <= 1.0f));
    }
}

static void fuzz_img_geometry(const image *img) {
    oir_error err = {0};
    image sq = {0}, r = {0};
    if (image_center_crop_resize(&sq, img, 64, &err) == OIR_OK) {
        fuzz_img_check(&sq, 3, 0);
        float *t = malloc((size_t)3 * 64 * 64 * sizeof *t);
        if (t) {
            image_to_tensor(&sq, t);
            image back = {0};
            if (image_from_tensor(&back, t, 3, 64, 64, &err) == OIR_OK) image_free(&back);
            free(t);
        }
        image_free(&sq);
    }
    if ((size_t)img->width * img->height > FUZZ_IMG_MAX_EXTRA) return;
    int w = img->width, h = img->height;
    if (image_resize(&r, img, w / 3 + 1, h < 100 ? 2 * h : h / 2 + 1, &err) == OIR_OK) {
        fuzz_img_check(&r, 3, 0);
        image_free(&r);
    }
    if (image_resize_nearest(&r, img, w < 100 ? w + 7 : w / 5 + 1, h / 4 + 1, &err) == OIR_OK)
        image_free(&r);
    if (image_center_crop(&r, img, &err) == OIR_OK) {
        FUZZ_ASSERT(r.width == r.height && r.width == (w < h ? w : h));
        image_free(&r);
    }
}

static void fuzz_img_mask(const char *path) {
    oir_error err = {0};
    image m = {0}, g = {0}, sq = {0};
    if (FUZZ_CALL("mask_load_square", mask_load_square(&m, path, 64, &err), &err)) return;
    fuzz_img_check(&m, 1, 1);
    if (mask_resize_nearest(&g, &m, 14, 14, &err) == OIR_OK) {
        fuzz_img_check(&g, 1, 1);
        image_free(&g);
    }
    if (image_alloc(&sq, 64, 64, 3, &err) == OIR_OK) {
        FUZZ_ASSERT(mask_check_size(&m, "mask", &sq, "image", &err) == OIR_OK);
        image_free(&sq);
    }
    image_free(&m);
}

static void fuzz_img_box(const uint8_t *data, size_t size) {
    oir_error err = {0};
    char *spec = fuzz_cstr(data, size < 64 ? size : 64);
    int box[4];
    image m = {0};
    if (mask_parse_box(spec, box, &err) == OIR_OK &&
        mask_from_box(&m, 64, 48, box, &err) == OIR_OK) {
        fuzz_img_check(&m, 1, 1);
        image_free(&m);
    }
    free(spec);
}

static int fuzz_image_one(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("input.png", data, size);
    oir_error err = {0};
    image img = {0};
    if (FUZZ_CALL("image_load", image_load(&img, path, &err), &err) == OIR_OK) {
        fuzz_img_check(&img, 3, 0);
        fuzz_img_geometry(&img);
        if ((size_t)img.width * img.height <= FUZZ_IMG_MAX_EXTRA) fuzz_img_mask(path);
        image_free(&img);
    }
    fuzz_img_box(data, size);
    return 0;
}

FUZZ_ENTRY(fuzz_image_one)
