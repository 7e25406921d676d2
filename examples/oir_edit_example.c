/* The smallest program using liboir: edit two objects of a PNG with OIR.
 *
 *   build/release/examples/oir_edit_example IMAGE.png OUT.png
 *
 * Uses the shipped tiny models (models/tiny-shapes, models/tiny-clip) and
 * boxes as masks; prints the chosen inversion step of each pair. */
#include <stdio.h>
#include <stdlib.h>

#include "io/image.h" /* PNG I/O and resizing; the library itself takes bytes */
#include "oir.h"

static int on_progress(void *user, const char *stage, int done, int total) {
    (void)user;
    if (done == total) fprintf(stderr, "%s: done (%d)\n", stage, total);
    return 0; /* non-zero would cancel */
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s IMAGE.png OUT.png\n", argv[0]);
        return 2;
    }
    oir_error err = {0};
    oir_context *ctx = NULL;
    oir_context_params cp = oir_context_default_params();
    if (oir_context_load(&ctx, &cp, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    int size = oir_context_image_size(ctx), rc = 1;
    image img = {0}, out = {0};
    unsigned char *rgb = malloc((size_t)size * size * 3), *left = calloc((size_t)size * size, 1),
                  *right = calloc((size_t)size * size, 1);
    if (!rgb || !left || !right || image_load_square(&img, argv[1], size, &err)) {
        fprintf(stderr, "%s\n", err.message[0] ? err.message : "out of memory");
        goto done;
    }
    for (size_t i = 0; i < (size_t)size * size * 3; i++) rgb[i] = (unsigned char)(img.data[i] * 255 + 0.5f);
    for (int y = size / 4; y < 3 * size / 4; y++)
        for (int x = 0; x < size / 2; x++) {
            left[y * size + x] = 1;
            right[y * size + x + size / 2] = 1;
        }
    oir_pair pairs[2] = {{"red circle", "green square", left, NULL}, {"blue triangle", "yellow star", right, NULL}};
    oir_params p = oir_default_params();
    p.progress = on_progress;
    oir_result *r = NULL;
    if (oir_edit(ctx, rgb, size, "a red circle on the left and a blue triangle on the right on a gray background",
                 pairs, 2, &p, &r, &err)) {
        fprintf(stderr, "%s\n", err.message);
        goto done;
    }
    for (int i = 0; i < r->n_pairs; i++)
        printf("pair %d: chosen inversion step %d of %d\n", i + 1, r->chosen_step[i], r->steps);
    if (!image_alloc(&out, size, size, 3, &err)) {
        for (size_t i = 0; i < (size_t)size * size * 3; i++) out.data[i] = r->edited[i] / 255.0f;
        rc = image_save_png(&out, argv[2], &err) ? 1 : 0;
    }
    if (rc) fprintf(stderr, "%s\n", err.message);
    oir_result_free(r);
done:
    image_free(&img);
    image_free(&out);
    free(rgb);
    free(left);
    free(right);
    oir_context_free(ctx);
    return rc;
}
