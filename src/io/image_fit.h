/* Photos as they are: the working image a model edits, cut from a photo of
 * any size and aspect, and the edit put back into the photo.
 *
 * Working size. The model takes images whose sides are multiples of m (the
 * VAE factor x 2^(UNet blocks - 1): 64 for SD 1.x, 16 for the shipped tiny
 * model). image_fit_size gives the photo's longer side `side` pixels (a
 * multiple of m) and the shorter side side * short / long rounded to the
 * nearest multiple of m (at least m), so a 768x512 photo at side 512 works at
 * 512x320 (the aspect 1.5 becomes 1.6).
 *
 * Transform (image_fit_plan). The working image shows the largest centred
 * region of the photo with the working aspect — the minimal crop: crop_w x
 * crop_h with crop_w / crop_h = work_w / work_h rounded to whole pixels, at
 * ((photo_w - crop_w) / 2, (photo_h - crop_h) / 2), floor — resized to
 * work_w x work_h (image_fit_image: Pillow BICUBIC; image_fit_mask: Pillow
 * NEAREST). Nothing is padded or stretched. For a square working size this
 * is exactly prompt-to-prompt's load_512 (image_center_crop_resize,
 * mask_load_square).
 *
 * Composite (image_fit_composite). The working-size result is resized back
 * to the crop's crop_w x crop_h pixels (Pillow BICUBIC) and blended into the
 * photo inside the masks (photo pixels, 1 channel), with a feather inside
 * them: alpha = min(1, d / (feather + 1)) where d is the (chamfer 3-4)
 * distance in photo pixels from the mask pixel to the nearest pixel outside
 * the masks or the crop (the photo's own border does not count). Pixels
 * outside the masks, or outside the crop, keep the photo's values exactly. */
#ifndef OIR_IO_IMAGE_FIT_H
#define OIR_IO_IMAGE_FIT_H

#include "io/image.h"

typedef struct {
    int photo_w, photo_h;                /* the photo */
    int crop_x, crop_y, crop_w, crop_h;  /* the region of the photo the working image shows */
    int work_w, work_h;                  /* the working image */
} image_fit;

/* Working size for a photo_w x photo_h photo: the longer side `side`, the
 * shorter from the aspect (see above). OIR_E_ARG when side is not a positive
 * multiple of `multiple`. */
int image_fit_size(int photo_w, int photo_h, int side, int multiple, int *work_w, int *work_h,
                   oir_error *err);
/* The minimal centred crop of the photo with the working aspect. */
void image_fit_plan(image_fit *f, int photo_w, int photo_h, int work_w, int work_h);
/* photo (photo_w x photo_h, any channels) -> out (work_w x work_h): crop,
 * Pillow BICUBIC resize. */
int image_fit_image(image *out, const image *photo, const image_fit *f, oir_error *err);
/* mask (photo_w x photo_h, 1 channel) -> out (work_w x work_h): crop,
 * Pillow NEAREST resize. */
int image_fit_mask(image *out, const image *mask, const image_fit *f, oir_error *err);
/* Pixels of a photo-size mask that lie outside the crop (they are not edited). */
long image_fit_mask_outside(const image *mask, const image_fit *f);
/* out (photo size, 3 channels) = photo with `edited` (work_w x work_h, 3
 * channels) composited inside the union of the n photo-size masks (see
 * above). feather >= 0 in photo pixels (image_fit_feather). */
int image_fit_composite(image *out, const image *photo, const image *edited, const image *masks, int n,
                        const image_fit *f, int feather, oir_error *err);
/* The default feather: two working pixels in photo pixels, at least 1. */
int image_fit_feather(const image_fit *f);

#endif
