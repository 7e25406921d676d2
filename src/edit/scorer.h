/* The two scores of the search metric (DESIGN.md §2.4) for the candidates of
 * one editing pair, computed with a CLIP model as the authors do:
 *   edit score       cosine(text_embeds(phrase), image_embeds(candidate) with
 *                    the vision transformer's attention restricted to the
 *                    class token and the patches inside the mask)
 *   background score minus the MSE between the CLIP-preprocessed candidate
 *                    and original outside the mask (mask resized nearest to
 *                    the CLIP input size, > 0.5), over all elements.
 *
 * Non-square images (h != w) are padded to a square of side max(h, w),
 * centred (offsets (side - w) / 2, (side - h) / 2, floor), with CLIP's mean
 * colour (image_mean rounded to 8 bits, which its normalisation maps to
 * about 0); the mask is padded with background. CLIP's own preprocessing
 * would centre-crop instead and could cut the object off. The padding lies
 * outside every mask, so the masked attention of the edit score never
 * attends to a patch of padding alone, and candidate and original share it,
 * so it adds nothing to the background MSE (whose mean then also counts the
 * padded pixels: the scale changes, the min-max normalised score does not).
 * Square images are not padded: results are as before, bit for bit. */
#ifndef OIR_EDIT_SCORER_H
#define OIR_EDIT_SCORER_H

#include "core/arena.h"
#include "io/image.h"
#include "models/loader.h"

typedef struct {
    const clip_model *clip;
    arena arena;
    int S, grid, P, batch; /* CLIP input side, patch grid, projection dim, rows per call */
    float *orig_pixels;    /* (3, S, S) the original, preprocessed */
    float *pixels;         /* (batch, 3, S, S) staging */
    float *embeds;         /* (batch, P) */
    uint8_t *patch_masks;  /* (batch, grid*grid) */
    int pad_left, pad_top; /* non-square images: where they sit in the padded square */
    image padded;          /* (side, side, 3) staging for a padded candidate; empty when square */
} scorer;

/* original: the input image, RGB in [0, 1], any width x height. */
int scorer_init(scorer *sc, const clip_model *clip, const image *original, oir_error *err);
void scorer_free(scorer *sc);

/* text_embeds of a phrase (P floats, not normalised). */
int scorer_text(scorer *sc, const char *phrase, float *embed, oir_error *err);

/* candidates: n RGB images of the original's size; mask: 1 channel, same
 * size. edit_scores, background_scores: n outputs each. */
int scorer_score(scorer *sc, const image *candidates, int n, const image *mask,
                 const float *text_embed, float *edit_scores, float *background_scores,
                 oir_error *err);

#endif
