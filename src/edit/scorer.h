/* The two scores of the search metric (DESIGN.md §2.4) for the candidates of
 * one editing pair, computed with a CLIP model as the authors do:
 *   edit score       cosine(text_embeds(phrase), image_embeds(candidate) with
 *                    the vision transformer's attention restricted to the
 *                    class token and the patches inside the mask)
 *   background score minus the MSE between the CLIP-preprocessed candidate
 *                    and original outside the mask (mask resized nearest to
 *                    the CLIP input size, > 0.5), over all elements. */
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
} scorer;

/* original: the (square) input image, RGB in [0, 1]. */
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
