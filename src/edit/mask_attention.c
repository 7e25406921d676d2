/* The cross-attention mask signal; see mask_attention.h and docs/MASKS.md. */
#include "edit/mask_attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/noise.h"
#include "edit/context.h"
#include "edit/prompts.h"
#include "models/attn_capture.h"

void mask_attention_defaults(mask_attention_params *p) {
    /* measured on 20 edit cases of the shapes world (docs/MASKS.md): the
     * layers one level below the latent (8x8 of 16x16) carry the layout */
    p->n_timesteps = 4;
    p->strength_lo = 0.1f;
    p->strength_hi = 0.3f;
    p->min_grid_divisor = 2;
    p->max_grid_divisor = 2;
    p->seed = 0;
}

static int check_params(const mask_attention_params *p, oir_error *err) {
    if (!p) return oir_fail(err, OIR_E_ARG, "attention mask: no parameters");
    if (p->n_timesteps < 1 || p->n_timesteps > MASK_ATTENTION_MAX_TIMESTEPS)
        return oir_fail(err, OIR_E_ARG, "attention mask: n_timesteps %d, expected 1..%d",
                        p->n_timesteps, MASK_ATTENTION_MAX_TIMESTEPS);
    if (!(p->strength_lo > 0.0f && p->strength_lo <= p->strength_hi && p->strength_hi <= 1.0f))
        return oir_fail(err, OIR_E_ARG,
                        "attention mask: strengths %g..%g, expected 0 < strength_lo <= "
                        "strength_hi <= 1 (fractions of the training schedule)",
                        p->strength_lo, p->strength_hi);
    if (p->min_grid_divisor < 1)
        return oir_fail(err, OIR_E_ARG, "attention mask: min_grid_divisor %d, expected >= 1",
                        p->min_grid_divisor);
    if (p->max_grid_divisor != 0 && p->max_grid_divisor < p->min_grid_divisor)
        return oir_fail(err, OIR_E_ARG,
                        "attention mask: max_grid_divisor %d, expected 0 (no bound) or >= "
                        "min_grid_divisor %d",
                        p->max_grid_divisor, p->min_grid_divisor);
    return OIR_OK;
}

int mask_attention_tokens(const tokenizer *tok, const char *prompt, const char *phrase, int ctx_len,
                          int *pos_out, int *n_out, oir_error *err) {
    if (!tok || !prompt || !phrase || !pos_out || !n_out)
        return oir_fail(err, OIR_E_ARG, "attention mask: missing argument");
    if (ctx_len < 3) return oir_fail(err, OIR_E_ARG, "attention mask: context length %d", ctx_len);
    long at = prompt_find_phrase(prompt, phrase);
    if (at < 0)
        return oir_fail(err, OIR_E_ARG, "'%s' does not occur as a word in the source prompt \"%s\"",
                        phrase, prompt);
    int times = prompt_count_phrase(prompt, phrase);
    if (times > 1)
        return oir_fail(err, OIR_E_ARG,
                        "'%s' occurs %d times as a word in the source prompt \"%s\", so which one "
                        "to look at is ambiguous; give a longer phrase",
                        phrase, times, prompt);
    size_t len = strlen(phrase);
    int32_t *pre = NULL, *ph = NULL, *ids = malloc((size_t)ctx_len * sizeof *ids);
    char *prefix = strndup(prompt, (size_t)at), *word = strndup(prompt + at, len);
    int n_pre = 0, n_ph = 0, n_total = 0, rc;
    if (!ids || !prefix || !word) {
        rc = oir_fail(err, OIR_E_NOMEM, "attention mask: out of memory");
        goto cleanup;
    }
    /* the phrase as the prompt writes it (case may differ from `phrase`) */
    if ((rc = tokenizer_tokenize(tok, prefix, &pre, &n_pre, err)) ||
        (rc = tokenizer_tokenize(tok, word, &ph, &n_ph, err)) ||
        (rc = tokenizer_encode(tok, prompt, ctx_len, ids, &n_total, NULL, err)))
        goto cleanup;
    int pos = 1 + n_pre, kept = (n_total < ctx_len ? n_total : ctx_len) - 2; /* ids[1..kept] */
    if (n_ph == 0) {
        rc = oir_fail(err, OIR_E_ARG, "attention mask: phrase '%s' has no tokens", phrase);
    } else if (n_ph > ATTN_CAPTURE_MAX_TOKENS) {
        rc = oir_fail(err, OIR_E_ARG, "attention mask: phrase '%s' has %d tokens, at most %d",
                      phrase, n_ph, ATTN_CAPTURE_MAX_TOKENS);
    } else if (pos + n_ph - 1 > kept) {
        rc = oir_fail(err, OIR_E_ARG,
                      "attention mask: phrase '%s' is at tokens %d..%d of the source prompt, past "
                      "the %d the text encoder keeps; shorten the prompt",
                      phrase, pos, pos + n_ph - 1, ctx_len - 2);
    } else if (memcmp(ids + pos, ph, (size_t)n_ph * sizeof *ph) != 0) {
        rc = oir_fail(err, OIR_E_ARG,
                      "attention mask: phrase '%s' tokenizes differently inside the prompt \"%s\" "
                      "than alone; cannot tell its token positions",
                      phrase, prompt);
    } else {
        *pos_out = pos;
        *n_out = n_ph;
    }
cleanup:
    free(pre);
    free(ph);
    free(ids);
    free(prefix);
    free(word);
    return rc;
}

int mask_attention_map_sampler(sampler *s, const float *latents, const char *source_prompt,
                               const char *phrase, const mask_attention_params *p, float *map_out,
                               oir_error *err) {
    return mask_attention_map_layers(s, latents, source_prompt, phrase, p, NULL, NULL, map_out,
                                     err);
}

int mask_attention_map_layers(sampler *s, const float *latents, const char *source_prompt,
                              const char *phrase, const mask_attention_params *p,
                              attn_capture_layer_fn layer_fn, void *layer_user, float *map_out,
                              oir_error *err) {
    if (!s || !latents || !source_prompt || !phrase || !map_out)
        return oir_fail(err, OIR_E_ARG, "attention mask: missing argument");
    int rc = check_params(p, err);
    if (rc) return rc;
    int tokens[ATTN_CAPTURE_MAX_TOKENS], n_tokens, nt = p->n_timesteps;
    if ((rc = mask_attention_tokens(s->model->tokenizer, source_prompt, phrase, s->ctx_len, tokens,
                                    &n_tokens, err)))
        return rc;
    for (int i = 1; i < n_tokens; i++)
        tokens[i] = tokens[0] + i;
    size_t N = s->lat_n, hw = (size_t)s->lat_h * s->lat_w;
    float *ctx = malloc((size_t)s->ctx_len * s->ctx_dim * sizeof(float));
    float *x = malloc((size_t)nt * N * sizeof(float)),
          *eps = malloc((size_t)nt * N * sizeof(float));
    attn_capture cap = {0};
    attn_capture *saved_cap = s->capture;
    int saved_trunc = s->truncate_prompts;
    if (!ctx || !x || !eps) {
        rc = oir_fail(err, OIR_E_NOMEM, "attention mask: out of memory");
        goto cleanup;
    }
    /* the phrase is within the kept tokens (checked above): a longer prompt is cut, as diffusers
     * does */
    s->truncate_prompts = 1;
    rc = sampler_encode_prompt(s, source_prompt, ctx, err);
    s->truncate_prompts = saved_trunc;
    if (rc) goto cleanup;

    /* x_i = sqrt(abar(t_i)) z0 + sqrt(1 - abar(t_i)) noise_i (DDPM add_noise) */
    int64_t t[MASK_ATTENTION_MAX_TIMESTEPS];
    const float *conds[MASK_ATTENTION_MAX_TIMESTEPS];
    int n_train = s->sched.cfg.num_train_timesteps;
    noise_gaussian(x, (size_t)nt * N, p->seed);
    for (int i = 0; i < nt; i++) {
        double f = nt == 1
                       ? 0.5 * ((double)p->strength_lo + p->strength_hi)
                       : p->strength_lo + ((double)p->strength_hi - p->strength_lo) * i / (nt - 1);
        int64_t ti = (int64_t)lround(f * n_train);
        t[i] = ti < 0 ? 0 : (ti > n_train - 1 ? n_train - 1 : ti);
        conds[i] = ctx;
        float a = ddim_alphabar(&s->sched, t[i]), sa = sqrtf(a), sn = sqrtf(1.0f - a);
        float *xi = x + (size_t)i * N;
        for (size_t j = 0; j < N; j++)
            xi[j] = sa * latents[j] + sn * xi[j];
    }

    if ((rc = attn_capture_init(&cap, s->lat_h, s->lat_w, s->ctx_len, tokens, n_tokens,
                                ATTN_CAPTURE_ALL_ROWS, p->min_grid_divisor, err)))
        goto cleanup;
    cap.max_grid_divisor = p->max_grid_divisor;
    cap.layer_fn = layer_fn, cap.layer_user = layer_user;
    s->capture = &cap;
    rc = sampler_eps(s, x, t, conds, NULL, 1.0f, nt, eps, err);
    s->capture = saved_cap;
    if (rc) goto cleanup;
    if (cap.n_added == 0) {
        rc = oir_fail(err, OIR_E_ARG,
                      "attention mask: no cross-attention layer has a token grid between 1/%d "
                      "and 1/%d of the %dx%d latent (min_grid_divisor, max_grid_divisor)",
                      p->min_grid_divisor, p->max_grid_divisor, s->lat_w, s->lat_h);
        goto cleanup;
    }
    /* mean over layers x timesteps, then min-max to [0, 1] */
    float lo = INFINITY, hi = -INFINITY;
    for (size_t j = 0; j < hw; j++) {
        float v = cap.map[j] / (float)cap.n_added;
        map_out[j] = v;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    float range = hi - lo;
    for (size_t j = 0; j < hw; j++)
        map_out[j] = range > 0 ? (map_out[j] - lo) / range : 0.0f;
cleanup:
    s->capture = saved_cap;
    attn_capture_free(&cap);
    free(ctx);
    free(x);
    free(eps);
    return rc;
}

int mask_attention_map(oir_context *ctx, const float *latents, int lh, int lw,
                       const char *source_prompt, const char *phrase,
                       const mask_attention_params *p, float *map_out, long *unet_rows,
                       oir_error *err) {
    if (!ctx || !latents || !map_out)
        return oir_fail(err, OIR_E_ARG, "attention mask: missing argument");
    int rc = check_params(p, err);
    if (rc) return rc;
    const sd_model *m = oir_context_sd_model(ctx);
    int f = vae_downscale(&m->vae->cfg), g = 1 << (m->unet->cfg.n_blocks - 1);
    if (lh < 1 || lw < 1 || lh % g || lw % g)
        return oir_fail(err, OIR_E_ARG,
                        "attention mask: latent %dx%d; the UNet takes sides that are multiples "
                        "of %d",
                        lw, lh, g);
    sampler s;
    if ((rc = sampler_init_hw(&s, m, lh * f, lw * f, 1, 0, err))) return rc;
    rc = mask_attention_map_sampler(&s, latents, source_prompt, phrase, p, map_out, err);
    if (!rc && unet_rows) *unet_rows += s.unet_rows;
    sampler_free(&s);
    return rc;
}
