/* The smallest program using liboir: edit two objects of a PNG with OIR.
 *
 *   oir_edit_example IMAGE.png OUT.png [STEPS]
 *
 * Needs only the installed header and library:
 *   cc oir_edit_example.c $(pkg-config --cflags --libs oir) -o oir_edit_example
 * Uses the shipped tiny models (found by oir_models_dir()) and boxes as
 * masks; prints its plan, a line per finished stage and the chosen
 * inversion step of each pair. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oir.h"

/* One line per stage as it finishes ("candidates (parallel): 2550/2550").
 * The library reports done = 0 when a stage starts and counts "decode" and
 * "scoring" across the whole run, so each of those finishes once. */
static int on_progress(void *user, const char *stage, int done, int total) {
    (void)user;
    if (done == total && total > 0) fprintf(stderr, "%s: %d/%d\n", stage, done, total);
    return 0; /* non-zero would cancel */
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s IMAGE.png OUT.png [STEPS]\n", argv[0]);
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
    unsigned char *rgb = NULL, *left = calloc((size_t)size * size, 1),
                  *right = calloc((size_t)size * size, 1);
    oir_result *r = NULL;
    if (!left || !right) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    if (oir_image_load(argv[1], size, &rgb, NULL, NULL, &err)) {
        fprintf(stderr, "%s\n", err.message);
        goto done;
    }
    for (int y = size / 4; y < 3 * size / 4; y++)
        for (int x = 0; x < size / 2; x++) {
            left[y * size + x] = 1;
            right[y * size + x + size / 2] = 1;
        }
    oir_pair pairs[2] = {{"red circle", "green square", left, NULL}, {"blue triangle", "yellow star", right, NULL}};
    oir_params p = oir_default_params();
    if (argc == 4) p.steps = atoi(argv[3]);
    p.progress = on_progress;
    oir_plan plan; /* the work ahead (oir_calibrate would add seconds) */
    if (oir_plan_run(ctx, size, size, 2, &p, NULL, &plan, &err) == OIR_OK)
        fprintf(stderr, "plan: %s%ld UNet rows, %d VAE decodes\n", plan.exact ? "" : "about ", plan.unet_rows_total,
                plan.decodes);
    if (oir_edit(ctx, rgb, size, "a red circle on the left and a blue triangle on the right on a gray background",
                 pairs, 2, &p, &r, &err)) {
        fprintf(stderr, "%s\n", err.message);
        goto done;
    }
    for (int i = 0; i < r->n_pairs; i++)
        printf("pair %d: chosen inversion step %d of %d\n", i + 1, r->chosen_step[i], r->steps);
    rc = oir_image_save_png(argv[2], r->edited, size, size, &err) ? 1 : 0;
    if (rc) fprintf(stderr, "%s\n", err.message);
done:
    oir_result_free(r);
    oir_free(rgb);
    free(left);
    free(right);
    oir_context_free(ctx);
    return rc;
}
