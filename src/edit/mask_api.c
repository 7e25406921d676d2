/* oir_mask_infer (include/oir.h "Automatic masks"): one pair's mask of an
 * image, with its own sampler, prompt encodings and VAE encode. oir_edit
 * infers masks inside its run instead (oir.c), reusing those. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "edit/context.h"
#include "edit/mask_infer.h"
#include "edit/prompts.h"
#include "io/image.h"

int oir_mask_infer(oir_context *ctx, const unsigned char *rgb, int width, int height, const char *source_prompt,
                   const char *old_phrase, const char *new_phrase, const oir_mask_params *pin,
                   unsigned char **mask_out, oir_mask_info *info_out, oir_error *err) {
    if (mask_out) *mask_out = NULL;
    if (!ctx || !rgb || !source_prompt || !old_phrase || !new_phrase || !mask_out)
        return oir_fail(err, OIR_E_ARG, "oir_mask_infer: missing argument");
    if (!*old_phrase || !*new_phrase) return oir_fail(err, OIR_E_ARG, "oir_mask_infer: empty phrase");
    int m = oir_context_size_multiple(ctx);
    if (width < m || height < m || width % m || height % m || width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE)
        return oir_fail(err, OIR_E_SHAPE,
                        "image is %dx%d; the model takes sides that are multiples of %d (crop/resize it first, e.g. "
                        "oir_working_size + oir_image_fit)",
                        width, height, m);
    oir_mask_params p = pin ? *pin : oir_mask_default_params();
    int rc = mask_params_check(&p, err);
    if (rc) return rc;
    char target[2048];
    const char *from[1] = {old_phrase}, *to[1] = {new_phrase};
    if ((rc = prompt_substitute(source_prompt, 1, from, to, NULL, target, sizeof target, err)))
        return oir_error_prefix(err, "the pair '%s' -> '%s'", old_phrase, new_phrase);
    sampler s;
    oir_mask_info info;
    image img = {0};
    float *src_ctx = NULL, *tgt_ctx = NULL, *pixels = NULL, *latent = NULL;
    unsigned char *mask = NULL;
    if ((rc = sampler_init_hw(&s, oir_context_sd_model(ctx), height, width, p.noise_steps, 0, err))) return rc;
    s.truncate_prompts = 1; /* as oir_edit: prompts past the text encoder's length are cut */
    size_t hw = (size_t)width * height, ctx_n = (size_t)s.ctx_len * s.ctx_dim;
    src_ctx = malloc(ctx_n * sizeof(float));
    tgt_ctx = malloc(ctx_n * sizeof(float));
    pixels = malloc(3 * hw * sizeof(float));
    latent = malloc(s.lat_n * sizeof(float));
    mask = malloc(hw);
    if (!src_ctx || !tgt_ctx || !pixels || !latent || !mask) {
        rc = oir_fail(err, OIR_E_NOMEM, "oir_mask_infer: out of memory");
        goto cleanup;
    }
    if ((rc = image_alloc(&img, width, height, 3, err))) goto cleanup;
    for (size_t i = 0; i < hw * 3; i++) img.data[i] = rgb[i] / 255.0f;
    image_to_tensor(&img, pixels);
    if ((rc = sampler_encode_prompt(&s, source_prompt, src_ctx, err)) ||
        (rc = sampler_encode_prompt(&s, target, tgt_ctx, err)) || (rc = sampler_encode_image(&s, pixels, latent, err)))
        goto cleanup;
    if ((rc = mask_infer_pair(&s, ctx, latent, src_ctx, tgt_ctx, source_prompt, old_phrase, &p, mask, &info, err)))
        goto cleanup;
    if (info_out) *info_out = info;
    *mask_out = mask;
    mask = NULL;
cleanup:
    sampler_free(&s);
    image_free(&img);
    free(src_ctx);
    free(tgt_ctx);
    free(pixels);
    free(latent);
    free(mask);
    return rc;
}
