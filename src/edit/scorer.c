#include "edit/scorer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edit/search_metric.h"

#define SCORER_BATCH 8

/* The padded square of a non-square image: img centred in sc->padded (whose
 * border keeps the pad colour); the square image itself otherwise. */
static const image *padded(scorer *sc, const image *img) {
    if (!sc->padded.data) return img;
    int side = sc->padded.width;
    for (int y = 0; y < img->height; y++)
        memcpy(sc->padded.data + ((size_t)(y + sc->pad_top) * side + sc->pad_left) * 3,
               img->data + (size_t)y * img->width * 3, (size_t)img->width * 3 * sizeof(float));
    return &sc->padded;
}

void scorer_free(scorer *sc) {
    if (!sc) return;
    arena_free(&sc->arena);
    free(sc->orig_pixels);
    free(sc->pixels);
    free(sc->embeds);
    free(sc->patch_masks);
    image_free(&sc->padded);
    memset(sc, 0, sizeof *sc);
}

int scorer_init(scorer *sc, const clip_model *clip, const image *original, oir_error *err) {
    memset(sc, 0, sizeof *sc);
    if (!clip || !clip->vision || !clip->text || !clip->tokenizer)
        return oir_fail(err, OIR_E_ARG, "scorer: the CLIP model needs a tokenizer, text and vision towers");
    const clip_vision_config *vc = clip_vision_get_config(clip->vision);
    const clip_text_config *tc = clip_text_get_config(clip->text);
    sc->clip = clip;
    sc->S = vc->image_size;
    sc->grid = clip_vision_grid(vc);
    sc->P = vc->projection_dim;
    sc->batch = SCORER_BATCH;
    if (tc->projection_dim != sc->P)
        return oir_fail(err, OIR_E_SHAPE, "%s: text projection %d differs from visual projection %d", clip->path,
                        tc->projection_dim, sc->P);
    int rc = OIR_OK;
    if (original->width != original->height) { /* pad to a square (scorer.h) */
        int side = original->width > original->height ? original->width : original->height;
        if ((rc = image_alloc(&sc->padded, side, side, 3, err))) return rc;
        sc->pad_left = (side - original->width) / 2;
        sc->pad_top = (side - original->height) / 2;
        for (int c = 0; c < 3; c++) {
            float v = nearbyintf(clip->preprocess.image_mean[c] * 255.0f) / 255.0f;
            for (size_t i = 0; i < (size_t)side * side; i++) sc->padded.data[i * 3 + c] = v;
        }
    }
    const image *orig = padded(sc, original);
    int oh, ow;
    clip_preprocess_size(&clip->preprocess, orig->height, orig->width, &oh, &ow);
    if (oh != sc->S || ow != sc->S) {
        scorer_free(sc);
        return oir_fail(err, OIR_E_SHAPE, "%s: preprocessing gives %dx%d pixels, the vision tower takes %dx%d",
                        clip->path, ow, oh, sc->S, sc->S);
    }
    size_t px = (size_t)3 * sc->S * sc->S;
    sc->orig_pixels = malloc(px * sizeof(float));
    sc->pixels = malloc(px * sc->batch * sizeof(float));
    sc->embeds = malloc((size_t)sc->P * sc->batch * sizeof(float));
    sc->patch_masks = malloc((size_t)sc->grid * sc->grid * sc->batch);
    size_t need = clip_vision_arena_bytes(vc, sc->batch);
    size_t need_text = clip_text_arena_bytes(tc, 1, tc->max_position_embeddings);
    if (!sc->orig_pixels || !sc->pixels || !sc->embeds || !sc->patch_masks)
        rc = oir_fail(err, OIR_E_NOMEM, "scorer: out of memory");
    if (!rc) rc = arena_init(&sc->arena, need > need_text ? need : need_text, err);
    if (!rc) rc = clip_preprocess(&clip->preprocess, orig, sc->orig_pixels, err);
    if (rc) scorer_free(sc);
    return rc;
}

int scorer_text(scorer *sc, const char *phrase, float *embed, oir_error *err) {
    const clip_text_config *tc = clip_text_get_config(sc->clip->text);
    int T = tc->max_position_embeddings, n = 0, truncated = 0;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)T);
    if (!ids) return oir_fail(err, OIR_E_NOMEM, "scorer: out of memory");
    int rc = tokenizer_encode(sc->clip->tokenizer, phrase, T, ids, &n, &truncated, err);
    if (!rc && truncated) rc = oir_fail(err, OIR_E_ARG, "phrase \"%s\" is longer than %d tokens", phrase, T);
    if (!rc) {
        size_t mark = arena_mark(&sc->arena);
        rc = clip_text_forward(sc->clip->text, &sc->arena, ids, 1, T, NULL, NULL, embed, err);
        arena_reset(&sc->arena, mark);
    }
    free(ids);
    return rc;
}

int scorer_score(scorer *sc, const image *candidates, int n, const image *mask,
                 const float *text_embed, float *edit_scores, float *background_scores,
                 oir_error *err) {
    int rc = OIR_OK, G2 = sc->grid * sc->grid;
    size_t px = (size_t)3 * sc->S * sc->S;
    image keep_mask = {0}, padded_mask = {0};
    unsigned char *keep = malloc((size_t)sc->S * sc->S);
    if (!keep) return oir_fail(err, OIR_E_NOMEM, "scorer: out of memory");
    if (sc->padded.data) { /* the mask padded with background, as the images */
        int side = sc->padded.width;
        if ((rc = image_alloc(&padded_mask, side, side, 1, err))) {
            free(keep);
            return rc;
        }
        for (int y = 0; y < mask->height; y++)
            memcpy(padded_mask.data + (size_t)(y + sc->pad_top) * side + sc->pad_left,
                   mask->data + (size_t)y * mask->width, (size_t)mask->width * sizeof(float));
        mask = &padded_mask;
    }
    rc = clip_patch_mask(sc->patch_masks, mask->data, mask->height, mask->width, &sc->clip->preprocess,
                         sc->grid, err);
    if (!rc) rc = mask_resize_nearest(&keep_mask, mask, sc->S, sc->S, err);
    for (int i = 0; !rc && i < sc->S * sc->S; i++) keep[i] = keep_mask.data[i] > 0.5f ? 0 : 1;
    for (int b = 1; !rc && b < sc->batch; b++) memcpy(sc->patch_masks + b * G2, sc->patch_masks, (size_t)G2);
    for (int start = 0; !rc && start < n; start += sc->batch) {
        int B = n - start < sc->batch ? n - start : sc->batch;
        for (int b = 0; !rc && b < B; b++)
            rc = clip_preprocess(&sc->clip->preprocess, padded(sc, &candidates[start + b]), sc->pixels + b * px, err);
        if (rc) break;
        size_t mark = arena_mark(&sc->arena);
        rc = clip_vision_forward(sc->clip->vision, &sc->arena, sc->pixels, B, sc->S, sc->S, sc->patch_masks,
                                 NULL, NULL, sc->embeds, err);
        arena_reset(&sc->arena, mark);
        for (int b = 0; !rc && b < B; b++) {
            edit_scores[start + b] = clip_cosine(sc->embeds + b * sc->P, text_embed, sc->P);
            background_scores[start + b] =
                negative_masked_mse(sc->pixels + b * px, sc->orig_pixels, keep, 3, sc->S, sc->S);
        }
    }
    image_free(&keep_mask);
    image_free(&padded_mask);
    free(keep);
    return rc;
}
