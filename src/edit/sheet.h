/* Pictures of a search: a contact sheet of every candidate of an editing pair
 * (step number under each, the chosen one framed in red) with the two
 * normalised scores and their sum plotted beneath, the chosen step marked. */
#ifndef OIR_EDIT_SHEET_H
#define OIR_EDIT_SHEET_H

#include "io/image.h"

#define SHEET_PICKED 3 /* = OIR_EVALUATED_FORCED (oir.h) */

/* candidates: T RGB images of equal size (candidate k at index k-1).
 * norm_edit, norm_background, total: T values each (total in [0, 2]).
 * best: chosen index (0-based). evaluated (T, may be NULL = all): 0 = the
 * search skipped it (a grey tile, no point on the curves), 1 = scored,
 * 2 = scored on a short schedule (marked "S"), SHEET_PICKED = the step was
 * given, not searched (marked "P", no point; "PICKED STEP k" when it is
 * best). title: a line on top (ASCII). */
int sheet_render(image *out, const image *candidates, int T, const float *norm_edit,
                 const float *norm_background, const float *total, int best,
                 const unsigned char *evaluated, const char *title, oir_error *err);

/* out = a band with `input` (RGB, the candidates' size) and `mask` (its
 * size, bytes, non-zero = inside) drawn over it — tinted red inside, the
 * edge solid red — and a caption beside it (lines split at '\n', the first
 * in red), above `sheet`. For masks the run inferred (sheet_mask.c). */
int sheet_add_mask(image *out, const image *sheet, const image *input, const unsigned char *mask,
                   const char *caption, oir_error *err);
/* sheet_render with the no-edit guard's verdicts: eligible (T, may be NULL =
 * no marks): a scored candidate with eligible[k] == 0 could not be chosen
 * (its masked CLIP score did not beat the source image's by the margin) and
 * is marked "X"; a note under the plot counts them. */
int sheet_render_guarded(image *out, const image *candidates, int T, const float *norm_edit,
                         const float *norm_background, const float *total, int best,
                         const unsigned char *evaluated, const unsigned char *eligible, const char *title,
                         oir_error *err);

/* Draws ASCII text with a 3x5 pixel font scaled by `scale` (lower case is
 * drawn as upper case; unknown characters as blanks). */
void sheet_draw_text(image *img, int x, int y, int scale, const float rgb[3], const char *text);

#endif
