/* The smallest program using liboir: edit two objects of a PNG with OIR.
 *
 *   oir_edit_example IMAGE.png OUT.png [STEPS]
 *
 * Needs only the installed header and library:
 *   cc oir_edit_example.c $(pkg-config --cflags --libs oir) -o oir_edit_example
 * Uses the shipped tiny models (found by oir_models_dir()) and two boxes
 * as masks; works on the photo at the model's size, prints its plan and a
 * line per finished stage, writes the whole photo with the edit put back,
 * and prints the chosen inversion step of each pair. */
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
    int rc = 1, pw = 0, ph = 0, w = 0, h = 0;
    unsigned char *photo = NULL, *rgb = NULL, *out = NULL, *left = NULL, *right = NULL, *wl = NULL, *wr = NULL;
    oir_result *r = NULL;
    /* the photo as it is, and the working image the model edits: the photo's
     * aspect, the model's native size as the longer side */
    if (oir_image_load(argv[1], 0, 0, &photo, &pw, &ph, &err) || oir_working_size(ctx, pw, ph, 0, &w, &h, &err) ||
        oir_image_fit(photo, pw, ph, 3, w, h, &rgb, &err)) {
        fprintf(stderr, "%s\n", err.message);
        goto done;
    }
    /* masks in the photo's pixels (the middle half of its height, left and
     * right halves), fitted like the photo */
    left = calloc((size_t)pw * ph, 1), right = calloc((size_t)pw * ph, 1);
    if (!left || !right) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    for (int y = ph / 4; y < 3 * ph / 4; y++)
        for (int x = 0; x < pw; x++) (x < pw / 2 ? left : right)[(size_t)y * pw + x] = 1;
    if (oir_image_fit(left, pw, ph, 1, w, h, &wl, &err) || oir_image_fit(right, pw, ph, 1, w, h, &wr, &err)) {
        fprintf(stderr, "%s\n", err.message);
        goto done;
    }
    oir_pair pairs[2] = {{"red circle", "green square", wl, NULL}, {"blue triangle", "yellow star", wr, NULL}};
    oir_params p = oir_default_params();
    if (argc == 4) p.steps = atoi(argv[3]);
    p.progress = on_progress;
    oir_plan plan; /* the work ahead (oir_calibrate would add seconds) */
    if (oir_plan_run(ctx, w, h, 2, &p, NULL, &plan, &err) == OIR_OK)
        fprintf(stderr, "plan: %s%ld UNet rows, %d VAE decodes\n", plan.exact ? "" : "about ", plan.unet_rows_total,
                plan.decodes);
    if (oir_edit(ctx, rgb, w, h, "a red circle on the left and a blue triangle on the right on a gray background",
                 pairs, 2, &p, &r, &err)) {
        fprintf(stderr, "%s\n", err.message);
        goto done;
    }
    for (int i = 0; i < r->n_pairs; i++)
        printf("pair %d: chosen inversion step %d of %d\n", i + 1, r->chosen_step[i], r->steps);
    /* the edit put back into the photo, at the photo's size */
    const unsigned char *masks[2] = {left, right};
    rc = oir_image_composite(photo, pw, ph, r->edited, w, h, masks, 2, &out, &err) ||
                 oir_image_save_png(argv[2], out, pw, ph, &err)
             ? 1
             : 0;
    if (rc) fprintf(stderr, "%s\n", err.message);
done:
    oir_result_free(r);
    oir_free(photo), oir_free(rgb), oir_free(out), oir_free(wl), oir_free(wr);
    free(left);
    free(right);
    oir_context_free(ctx);
    return rc;
}
