/* oir-quality: issue 4's four quality bars of the shapes-world models,
 * measured by the C engine on the held-out scenes of bench/scenes/heldout.
 *
 *   (a) tiny CLIP through the masked attention (DESIGN.md §2.4): each object
 *       of each scene, seen through its exact mask (reduced to the patch
 *       grid by --patch), is read two ways:
 *       (a)  the arg-max cosine against every "COLOUR SHAPE" phrase of the
 *            world (7 x 8 = 56), what the search metric's score looks at;
 *       (a') colour = arg-max over the colour words on the image, shape =
 *            arg-max over the shape words on the image's greyscale copy
 *            (se_judge_classify_attrs), the judge of (c) and edit_bench.
 *       "both right" = colour and shape are the object's.      bar >= 95%
 *   (b) VAE reconstruction: encode (posterior mean) -> decode -> 8 bits,
 *       PSNR against the scene, averaged over scenes.          bar >= 30 dB
 *   (c) generation for the held-out captions: DDIM T steps, CFG 7.5 with
 *       the empty prompt as negative, oir's seeded noise (seed + scene index);
 *       an image is right when every object, judged by the tiny CLIP through
 *       the mask of the object the caption asks for (its slot in the scene),
 *       is the caption's colour and shape.                     bar >= 80%
 *   (d) DDIM inversion (T steps, source caption, guidance 1) then T denoising
 *       steps with the same caption (guidance 1), PSNR against the scene.
 *                                                              bar >= 25 dB
 * Every scene holds at least one held-out colour+shape combination.
 * Prints a markdown table; --json writes the numbers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/cli_sd.h"
#include "cli/progress.h"
#include "diffusion/sampler.h"
#include "io/image.h"
#include "io/outfile.h"
#include "models/loader.h"
#include "oir.h"
#include "measure.h"
#include "shapes_eval.h"

static void usage(FILE *to) {
    fprintf(to,
            "usage: quality [--model DIR] [--clip DIR] [--scenes DIR] [--n N] [--steps 50]\n"
            "               [--guidance 7.5] [--seed 0] [--only abcd] [--json OUT.json]\n"
            "               [--threads N] [--quiet]\n"
            "\n"
            "Issue 4's quality bars of the shapes-world models, measured by the C engine on\n"
            "held-out scenes (every scene holds a colour+shape combination never drawn in\n"
            "training):\n"
            "  (a) tiny CLIP through the masked attention: each object's colour and shape\n"
            "      (arg-max over every 'COLOUR SHAPE' phrase)                 bar >= 95%%\n"
            "  (b) VAE reconstruction PSNR                                      bar >= 30 dB\n"
            "  (c) generation for held-out captions (DDIM, CFG, empty negative): images\n"
            "      with every object right, judged by the tiny CLIP through each\n"
            "      object's mask                                              bar >= 80%%\n"
            "  (d) DDIM inversion then reconstruction with the source caption\n"
            "      (guidance 1) PSNR                                          bar >= 25 dB\n"
            "\n"
            "  --model DIR    SD pipeline (default models/tiny-shapes)\n"
            "  --clip DIR     CLIP judge (default models/tiny-clip)\n"
            "  --scenes DIR   held-out scenes with manifest.json (default bench/scenes/heldout)\n"
            "  --n N          first N scenes only (default all)\n"
            "  --steps T      DDIM steps of (c) and (d) (default 50)\n"
            "  --guidance G   CFG of (c) (default 7.5)\n"
            "  --seed S       noise seed of (c): scene i uses S + i (default 0)\n"
            "  --only LETTERS measure only these bars, e.g. --only abd\n"
            "  --json FILE    also write the numbers as JSON\n"
            "  --samples PNG  (c): the first 16 scenes above the images generated from their captions\n"
            "  --patch MODE   how the judge takes masks to the patch grid: any (default: every patch\n"
            "                 the mask touches), nearest (as the search metric: torch nearest,\n"
            "                 top-left pixel of each patch) or centre (the patch's centre pixel, as\n"
            "                 tools/train/eval.py)\n"
            "  --read HOW     how (c)'s judge reads an object: words (default: colour words on the\n"
            "                 image, shape words on its greyscale) or phrase (arg-max over every\n"
            "                 'COLOUR SHAPE' phrase); (a) reports both\n"
            "  --threads N    CPU threads (default $OIR_THREADS, else all cores)\n"
            "Scenes of another size than the model's are resized (bicubic, masks nearest).\n");
}

static int report(const char *what, const oir_error *err) {
    fprintf(stderr, "quality: %s%s%s\n", what, what[0] ? ": " : "", err->message);
    return err->code == OIR_E_ARG ? 2 : 1;
}

static void write_json(FILE *f, const se_quality *q, const char *model, const char *clip, int n, int T,
                       float g, int size, const char *patch, const char *read) {
    double a = q->clip_objects ? (double)q->clip_both / q->clip_objects : NAN;
    double c = q->gen_images ? (double)q->gen_all_right / q->gen_images : NAN;
#define JNUM(x) (isfinite(x) ? (x) : -1.0)
    fprintf(f,
            "{\n \"model\": \"%s\",\n \"clip\": \"%s\",\n \"scenes\": %d,\n \"steps\": %d,\n"
            " \"guidance\": %g,\n \"image_size\": %d,\n \"judge_patch\": \"%s\",\n \"judge_reads\": \"%s\",\n"
            " \"a_clip_objects\": %ld,\n \"a_clip_both_acc\": %.4f,\n \"a_clip_colour_acc\": %.4f,\n"
            " \"a_clip_shape_acc\": %.4f,\n \"a_clip_heldout_combo_acc\": %.4f,\n"
            " \"a_attr_both_acc\": %.4f,\n \"a_attr_colour_acc\": %.4f,\n \"a_attr_shape_acc\": %.4f,\n"
            " \"a_attr_heldout_combo_acc\": %.4f,\n"
            " \"b_vae_psnr_db\": %.3f,\n"
            " \"c_gen_images\": %ld,\n \"c_gen_all_objects_right\": %.4f,\n \"c_gen_object_right\": %.4f,\n"
            " \"c_gen_all_objects_right_pixel_judge\": %.4f,\n \"c_gen_object_right_pixel_judge\": %.4f,\n"
            " \"d_inversion_psnr_db\": %.3f,\n \"d_inversion_vs_vae_psnr_db\": %.3f,\n"
            " \"seconds\": {\"a\": %.1f, \"b\": %.1f, \"c\": %.1f, \"d\": %.1f},\n"
            " \"note\": \"-1 = not measured\"\n}\n",
            model, clip, n, T, g, size, patch, read, q->clip_objects, JNUM(a),
            JNUM(q->clip_objects ? (double)q->clip_colour / q->clip_objects : NAN),
            JNUM(q->clip_objects ? (double)q->clip_shape / q->clip_objects : NAN),
            JNUM(q->clip_heldout ? (double)q->clip_heldout_both / q->clip_heldout : NAN),
            JNUM(q->clip_objects ? (double)q->attr_both / q->clip_objects : NAN),
            JNUM(q->clip_objects ? (double)q->attr_colour / q->clip_objects : NAN),
            JNUM(q->clip_objects ? (double)q->attr_shape / q->clip_objects : NAN),
            JNUM(q->clip_heldout ? (double)q->attr_heldout_both / q->clip_heldout : NAN),
            JNUM(se_stat_mean(&q->vae_psnr)), q->gen_images, JNUM(c),
            JNUM(q->gen_objects ? (double)q->gen_objects_right / q->gen_objects : NAN),
            JNUM(q->gen_images ? (double)q->gen_px_all_right / q->gen_images : NAN),
            JNUM(q->gen_objects ? (double)q->gen_px_objects_right / q->gen_objects : NAN),
            JNUM(se_stat_mean(&q->inv_psnr)), JNUM(se_stat_mean(&q->inv_vs_vae_psnr)), q->seconds[0],
            q->seconds[1], q->seconds[2], q->seconds[3]);
#undef JNUM
}

#define SAMPLES 16

/* sheet: 2 rows of n images (scenes, then generated), side `size`. */
static int write_samples(const char *path, const unsigned char *sheet, int n, int size, oir_error *err) {
    image img = {0};
    int rc = image_alloc(&img, size * n, size * 2, 3, err);
    if (rc) return rc;
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < n; k++)
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                    for (int c = 0; c < 3; c++)
                        img.data[(((size_t)r * size + y) * img.width + (size_t)k * size + x) * 3 + c] =
                            sheet[((size_t)(r * SAMPLES + k) * size * size + (size_t)y * size + x) * 3 + c] / 255.0f;
    rc = image_save_png(&img, path, err);
    image_free(&img);
    return rc;
}

static const char *verdict(double v, double bar) { return isnan(v) ? "-" : (v >= bar ? "**pass**" : "FAIL"); }

static void print_table(FILE *f, const se_quality *q, int n, int T, float g) {
    double a = q->clip_objects ? 100.0 * q->clip_both / q->clip_objects : NAN;
    double b = se_stat_mean(&q->vae_psnr), d = se_stat_mean(&q->inv_psnr);
    double c = q->gen_images ? 100.0 * q->gen_all_right / q->gen_images : NAN;
    fprintf(f, "| bar (issue 4), %d held-out scenes | measured | target | |\n|---|---|---|---|\n", n);
    if (q->clip_objects)
        fprintf(f,
                "| (a) tiny CLIP, masked attention: colour+shape right, read as phrases (%ld objects) | %.1f%% (colour %.1f%%, "
                "shape %.1f%%; held-out combos %.1f%% of %ld) | >= 95%% | %s |\n",
                q->clip_objects, a, 100.0 * q->clip_colour / q->clip_objects,
                100.0 * q->clip_shape / q->clip_objects,
                q->clip_heldout ? 100.0 * q->clip_heldout_both / q->clip_heldout : NAN, q->clip_heldout,
                verdict(a, 95));
    if (q->clip_objects) {
        double a2 = 100.0 * q->attr_both / q->clip_objects;
        fprintf(f,
                "| (a') the same, read as words (colour on the image, shape on its greyscale) | %.1f%% (colour "
                "%.1f%%, shape %.1f%%; held-out combos %.1f%%) | >= 95%% | %s |\n",
                a2, 100.0 * q->attr_colour / q->clip_objects, 100.0 * q->attr_shape / q->clip_objects,
                q->clip_heldout ? 100.0 * q->attr_heldout_both / q->clip_heldout : NAN, verdict(a2, 95));
    }
    if (q->vae_psnr.n)
        fprintf(f, "| (b) VAE reconstruction PSNR | %.2f dB (std %.2f) | >= 30 dB | %s |\n", b,
                se_stat_std(&q->vae_psnr), verdict(b, 30));
    if (q->gen_images)
        fprintf(f,
                "| (c) generation, held-out captions (DDIM %d, CFG %g): every object right | %.1f%% of %ld "
                "(per object %.1f%%) | >= 80%% | %s |\n",
                T, g, c, q->gen_images, 100.0 * q->gen_objects_right / q->gen_objects, verdict(c, 80));
    if (q->gen_images) {
        double c2 = 100.0 * q->gen_px_all_right / q->gen_images;
        fprintf(f,
                "| (c') the same, pixel judge (colour and outline against the renderer's ground truth) | %.1f%% of "
                "%ld (per object %.1f%%) | >= 80%% | %s |\n",
                c2, q->gen_images, 100.0 * q->gen_px_objects_right / q->gen_objects, verdict(c2, 80));
    }
    if (q->inv_psnr.n)
        fprintf(f,
                "| (d) DDIM inversion %d + reconstruction, source caption, PSNR | %.2f dB (std %.2f; vs the VAE "
                "reconstruction %.2f dB) | >= 25 dB | %s |\n",
                T, d, se_stat_std(&q->inv_psnr), se_stat_mean(&q->inv_vs_vae_psnr), verdict(d, 25));
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
    const char *model = "models/tiny-shapes", *clip_dir = "models/tiny-clip", *scenes = "bench/scenes/heldout";
    const char *json = NULL, *only = "abcd", *samples = NULL, *patch = "any", *read = "words";
    int n_max = 0, T = 50, threads = 0, quiet = 0;
    float guidance = 7.5f;
    uint64_t seed = 0;
    const cli_opt opts[] = {
        {"--model", CLI_STR, &model, 0, 0},        {"--clip", CLI_STR, &clip_dir, 0, 0},
        {"--scenes", CLI_STR, &scenes, 0, 0},      {"--n", CLI_INT, &n_max, 0, 1000000},
        {"--steps", CLI_INT, &T, 1, 1000},         {"--guidance", CLI_FLOAT, &guidance, 0, 100},
        {"--seed", CLI_U64, &seed, 0, 0},          {"--only", CLI_STR, &only, 0, 0},
        {"--json", CLI_STR, &json, 0, 0},          {"--threads", CLI_INT, &threads, 1, 1024},
        {"--quiet", CLI_FLAG, &quiet, 0, 0},      {"--samples", CLI_STR, &samples, 0, 0},
        {"--patch", CLI_STR, &patch, 0, 0},        {"--read", CLI_STR, &read, 0, 0},
    };
    oir_error err = {0};
    int rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL, &err);
    if (rc) return report("", &err);
    int do_a = !!strchr(only, 'a'), do_b = !!strchr(only, 'b'), do_c = !!strchr(only, 'c'),
        do_d = !!strchr(only, 'd');
    if (!(do_a || do_b || do_c || do_d) || strspn(only, "abcd") != strlen(only)) {
        fprintf(stderr, "quality: --only takes letters among a, b, c, d (got '%s')\n", only);
        return 2;
    }
    if (se_read_words(read) < 0) {
        fprintf(stderr, "quality: --read is " SE_READ_MODES " (got '%s')\n", read);
        return 2;
    }
    if (se_patch_mode(patch) < 0) {
        fprintf(stderr, "quality: --patch is " SE_PATCH_MODES " (got '%s')\n", patch);
        return 2;
    }
    cli_set_threads(threads);

    se_scene_set set = {0};
    sd_model *m = NULL;
    clip_model *clip = NULL;
    se_judge judge = {0};
    se_px_judge px = {0};
    sampler s = {0};
    int have_judge = 0, have_sampler = 0, exit_code = 0, size = 0;
    unsigned char *rgb = NULL, *masks = NULL, *sheet = NULL;
    float *uncond = NULL;
    se_quality q;
    memset(&q, 0, sizeof q);
    const char *stage = "";
    if ((rc = se_scene_set_load(&set, scenes, &err))) goto fail;
    int n = n_max > 0 && n_max < set.n ? n_max : set.n;
    stage = "--model";
    if ((rc = cli_load_sd(&m, model, 0, NULL, NULL, TOKENIZER_CLIP, &err))) goto fail;
    if ((rc = sd_model_native_size(m, NULL, &size, &err))) goto fail;
    stage = "--clip";
    if ((rc = clip_model_load(&clip, clip_dir, &err))) goto fail;
    stage = "";
    if ((rc = se_judge_init(&judge, clip, &set.vocab, &err))) goto fail;
    have_judge = 1;
    judge.patch_mode = se_patch_mode(patch);
    judge.read_words = se_read_words(read);
    if ((rc = se_px_init(&px, &set.vocab, size, &err))) goto fail;
    if ((rc = sampler_init(&s, m, size, T, 0, &err))) goto fail;
    have_sampler = 1;
    size_t hw = (size_t)size * size;
    rgb = malloc(hw * 3);
    masks = malloc(hw * SE_MAX_OBJECTS);
    uncond = malloc(sizeof(float) * (size_t)s.ctx_len * s.ctx_dim);
    sheet = calloc(hw * 3, 2 * SAMPLES);
    if (!rgb || !masks || !uncond || !sheet) {
        rc = oir_fail(&err, OIR_E_NOMEM, "out of memory");
        goto fail;
    }
    if (!quiet)
        fprintf(stderr, "quality: %d scenes of %s, model %s (%dx%d%s), CLIP %s, T=%d, %d thread(s)\n", n, scenes,
                model, size, size, size != set.size ? ", scenes resized" : "", clip_dir, T, oir_get_threads());
    if (do_c && (rc = sampler_encode_prompt(&s, "", uncond, &err))) goto fail;
    se_quality_params qp = {(do_a ? SE_Q_CLIP : 0) | (do_b ? SE_Q_VAE : 0) | (do_c ? SE_Q_GEN : 0) |
                                (do_d ? SE_Q_INV : 0),
                            guidance, uncond, 0, &px};
    progress_bar bar;
    progress_init(&bar, quiet);
    for (int i = 0; i < n; i++) {
        const se_scene *sc = &set.scenes[i];
        if ((rc = se_load_rgb(sc->image, size, rgb, &err))) goto fail;
        for (int o = 0; o < sc->n_objects; o++)
            if ((rc = se_load_mask(sc->objects[o].mask, size, masks + o * hw, &err))) goto fail;
        qp.seed = seed + (uint64_t)i;
        unsigned char *gen = i < SAMPLES ? sheet + (size_t)(SAMPLES + i) * hw * 3 : NULL;
        if (i < SAMPLES) memcpy(sheet + (size_t)i * hw * 3, rgb, hw * 3);
        if ((rc = se_quality_scene(&s, &judge, sc, rgb, masks, &qp, &q, do_c ? gen : NULL, &err))) goto fail;
        progress_update(&bar, "held-out scenes", i + 1, n);
    }
    print_table(stdout, &q, n, T, guidance);
    printf("\nmodel %s, CLIP %s, %d thread(s); seconds: a %.1f, b %.1f, c %.1f, d %.1f\n", model, clip_dir,
           oir_get_threads(), q.seconds[0], q.seconds[1], q.seconds[2], q.seconds[3]);
    if (samples && (rc = write_samples(samples, sheet, n < SAMPLES ? n : SAMPLES, size, &err))) goto fail;
    if (samples) printf("wrote %s (top: held-out scenes, bottom: generated from their captions)\n", samples);
    if (json) {
        outfile f;
        if ((rc = outfile_open(&f, json, &err))) goto fail;
        write_json(f.fp, &q, model, clip_dir, n, T, guidance, size, patch, read);
        if ((rc = outfile_commit(&f, &err))) goto fail;
        printf("wrote %s\n", json);
    }
    goto cleanup;
fail:
    exit_code = report(stage, &err);
cleanup:
    free(rgb);
    free(sheet);
    free(masks);
    free(uncond);
    if (have_sampler) sampler_free(&s);
    if (have_judge) se_judge_free(&judge);
    se_px_free(&px);
    clip_model_free(clip);
    sd_model_free(m);
    se_scene_set_free(&set);
    return exit_code;
}
