/* Cross-attention capture; see attn_capture.h. The probabilities follow
 * diffusers 0.16.1 Attention.get_attention_scores + AttnProcessor:
 *   scores = baddbmm(q, k^T, alpha = scale), probs = scores.softmax(-1)
 * per head, float32. */
#include "models/attn_capture.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"

int attn_capture_init(attn_capture *c, int lh, int lw, int ctx_len, const int *tokens,
                      int n_tokens, int row, int min_grid_divisor, oir_error *err) {
    memset(c, 0, sizeof *c);
    if (lh < 1 || lw < 1 || ctx_len < 1)
        return oir_fail(err, OIR_E_ARG,
                        "attention capture: latent %dx%d, context length %d: all must be >= 1", lw,
                        lh, ctx_len);
    if (ctx_len > ATTN_CAPTURE_MAX_KEYS)
        return oir_fail(err, OIR_E_ARG,
                        "attention capture: context length %d is above the %d supported", ctx_len,
                        ATTN_CAPTURE_MAX_KEYS);
    if (!tokens || n_tokens < 1)
        return oir_fail(err, OIR_E_ARG, "attention capture: no token positions given");
    if (n_tokens > ATTN_CAPTURE_MAX_TOKENS)
        return oir_fail(err, OIR_E_ARG, "attention capture: %d token positions, at most %d",
                        n_tokens, ATTN_CAPTURE_MAX_TOKENS);
    for (int i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= ctx_len)
            return oir_fail(err, OIR_E_ARG,
                            "attention capture: token position %d is outside the context's 0..%d",
                            tokens[i], ctx_len - 1);
    if (row < ATTN_CAPTURE_ALL_ROWS)
        return oir_fail(err, OIR_E_ARG,
                        "attention capture: row %d (a batch row >= 0, or ATTN_CAPTURE_ALL_ROWS)",
                        row);
    if (min_grid_divisor < 1)
        return oir_fail(err, OIR_E_ARG, "attention capture: min_grid_divisor %d, expected >= 1",
                        min_grid_divisor);
    size_t hw = (size_t)lh * lw;
    c->map = calloc(hw, sizeof(float));
    c->layer_map = malloc(hw * sizeof(float));
    if (!c->map || !c->layer_map) {
        attn_capture_free(c);
        return oir_fail(err, OIR_E_NOMEM, "attention capture: out of memory for a %dx%d map", lw,
                        lh);
    }
    c->lh = lh, c->lw = lw, c->ctx_len = ctx_len, c->row = row;
    c->min_grid_divisor = min_grid_divisor;
    c->n_tokens = n_tokens;
    memcpy(c->tokens, tokens, (size_t)n_tokens * sizeof *tokens);
    return OIR_OK;
}

void attn_capture_free(attn_capture *c) {
    if (!c) return;
    free(c->map);
    free(c->layer_map);
    memset(c, 0, sizeof *c);
}

void attn_capture_reset(attn_capture *c) {
    memset(c->map, 0, (size_t)c->lh * c->lw * sizeof(float));
    c->n_added = 0;
}

int attn_capture_check(const attn_capture *c, int B, int h, int w, int ctx_len, oir_error *err) {
    if (!c->map) return oir_fail(err, OIR_E_ARG, "attention capture: not initialised");
    if (h != c->lh || w != c->lw || ctx_len != c->ctx_len)
        return oir_fail(err, OIR_E_ARG,
                        "attention capture: made for a %dx%d latent and %d context tokens, the "
                        "forward has %dx%d and %d",
                        c->lw, c->lh, c->ctx_len, w, h, ctx_len);
    if (c->row >= B)
        return oir_fail(err, OIR_E_ARG,
                        "attention capture: row %d, but the forward has %d batch rows", c->row, B);
    return OIR_OK;
}

int attn_capture_wants(const attn_capture *c, int gh, int gw) {
    return (long)gh * c->min_grid_divisor <= c->lh &&
           (c->max_grid_divisor <= 0 || (long)gh * c->max_grid_divisor >= c->lh);
}

typedef struct {
    const attn_capture *c;
    const float *q, *k;
    float *out;
    int Tk, heads, d;
    float scale;
} probs_job;

/* out[i] = mean over heads and chosen tokens of softmax(q_i k^T * scale). */
static void probs_rows(void *ctx, long i0, long i1, int worker) {
    const probs_job *j = ctx;
    const attn_capture *c = j->c;
    int Tk = j->Tk, d = j->d, C = j->heads * d;
    float s[ATTN_CAPTURE_MAX_KEYS];
    for (long i = i0; i < i1; i++) {
        const float *qi = j->q + (size_t)i * C;
        float acc = 0.0f;
        for (int h = 0; h < j->heads; h++) {
            const float *qh = qi + (size_t)h * d;
            float mx = -INFINITY;
            for (int t = 0; t < Tk; t++) {
                const float *kt = j->k + (size_t)t * C + (size_t)h * d;
                float dot = 0.0f;
                for (int e = 0; e < d; e++) dot += qh[e] * kt[e];
                s[t] = dot * j->scale;
                if (s[t] > mx) mx = s[t];
            }
            float sum = 0.0f;
            for (int t = 0; t < Tk; t++) sum += s[t] = expf(s[t] - mx);
            float picked = 0.0f;
            for (int n = 0; n < c->n_tokens; n++) picked += s[c->tokens[n]];
            acc += picked / sum;
        }
        j->out[i] = acc / (float)(j->heads * c->n_tokens);
    }
}

/* map (lh, lw) += bilinear(src (gh, gw)), torch's align_corners=False
 * sampling: source = max(scale * (dst + 0.5) - 0.5, 0), scale = in / out. */
void attn_map_bilinear_add(float *map, int lh, int lw, const float *src, int gh, int gw) {
    float sh = (float)gh / (float)lh, sw = (float)gw / (float)lw;
    for (int y = 0; y < lh; y++) {
        float fy = sh * ((float)y + 0.5f) - 0.5f;
        if (fy < 0) fy = 0;
        int y0 = (int)fy, y1 = y0 + (y0 < gh - 1);
        float ly1 = fy - (float)y0, ly0 = 1.0f - ly1;
        for (int x = 0; x < lw; x++) {
            float fx = sw * ((float)x + 0.5f) - 0.5f;
            if (fx < 0) fx = 0;
            int x0 = (int)fx, x1 = x0 + (x0 < gw - 1);
            float lx1 = fx - (float)x0, lx0 = 1.0f - lx1;
            map[(size_t)y * lw + x] +=
                ly0 * (lx0 * src[(size_t)y0 * gw + x0] + lx1 * src[(size_t)y0 * gw + x1]) +
                ly1 * (lx0 * src[(size_t)y1 * gw + x0] + lx1 * src[(size_t)y1 * gw + x1]);
        }
    }
}

void attn_capture_layer(attn_capture *c, const char *name, int row, const float *q,
                        const float *k, int gh, int gw, int Tk, int heads, int d) {
    long T = (long)gh * gw;
    probs_job j = {c, q, k, c->layer_map, Tk, heads, d, (float)(1.0 / sqrt((double)d))};
    pool_for(T, pool_grain(T, (double)heads * d * Tk), probs_rows, &j);
    if (c->layer_fn) c->layer_fn(c->layer_user, name, row, gh, gw, c->layer_map);
    attn_map_bilinear_add(c->map, c->lh, c->lw, c->layer_map, gh, gw);
    c->n_added++;
}
