/* CPU kernels for Stable Diffusion, over plain float32 arrays.
 *
 * Conventions (read side by side with PyTorch):
 * - images/feature maps are (N, C, H, W) contiguous; token sequences are
 *   (B, T, C) contiguous; weights use PyTorch's layouts (Linear (out, in),
 *   Conv2d (out, in, kh, kw)).
 * - `out` never aliases an input unless the comment says "in place allowed".
 * - No kernel allocates: where scratch memory is needed, the caller passes it
 *   (size from the matching *_scratch function), normally from an arena.
 * - Threading is internal (OpenMP, disjoint output rows) and BLAS does the
 *   matrix products; results do not depend on the thread count.
 */
#ifndef OIR_CORE_OPS_H
#define OIR_CORE_OPS_H

#include <stddef.h>
#include <stdint.h>

/* ---- matrix products (BLAS) ------------------------------------------- */

/* out (M, N) = a (M, K) @ b (K, N)  [b_trans: b is (N, K) and used as b^T]
 * out = alpha * a@b + beta * out. */
void op_matmul(float *out, const float *a, const float *b, int M, int N, int K, int b_trans,
               float alpha, float beta);

/* torch.nn.Linear: out (rows, out_f) = in (rows, in_f) @ weight(out_f, in_f)^T + bias.
 * bias may be NULL. */
void op_linear(float *out, const float *in, const float *weight, const float *bias, int rows,
               int in_f, int out_f);

/* ---- convolution ------------------------------------------------------- */

/* torch.nn.Conv2d with square kernel k (1 or 3 in SD, any k works), stride
 * s, zero padding p: in (N, C_in, H, W), weight (C_out, C_in, k, k), bias
 * (C_out) or NULL, out (N, C_out, H_out, W_out) with
 * H_out = (H + 2p - k)/s + 1. `scratch` holds op_conv2d_scratch() floats
 * (im2col of one image; 0 for 1x1 stride-1 unpadded convs). */
size_t op_conv2d_scratch(int C_in, int H, int W, int k, int stride, int pad);
void op_conv2d(float *out, const float *in, const float *weight, const float *bias, int N,
               int C_in, int H, int W, int C_out, int k, int stride, int pad, float *scratch);

/* ---- normalisation ----------------------------------------------------- */

/* torch.nn.GroupNorm: x (N, C, HW); gamma/beta (C) or NULL. In place allowed.
 * If fuse_silu, applies SiLU to the result (GroupNorm then SiLU is SD's
 * commonest pair). */
void op_group_norm(float *out, const float *in, const float *gamma, const float *beta, int N,
                   int C, int HW, int groups, float eps, int fuse_silu);

/* torch.nn.LayerNorm over the last dim: x (rows, C). In place allowed. */
void op_layer_norm(float *out, const float *in, const float *gamma, const float *beta, int rows,
                   int C, float eps);

/* ---- activations (in place allowed) ------------------------------------ */
void op_silu(float *out, const float *in, size_t n);
void op_gelu(float *out, const float *in, size_t n);      /* erf form (torch default) */
void op_gelu_tanh(float *out, const float *in, size_t n); /* approximate='tanh' */
void op_quick_gelu(float *out, const float *in, size_t n); /* x * sigmoid(1.702 x) (CLIP) */

/* diffusers GEGLU after its projection: in (rows, 2*C) = [hidden | gate];
 * out (rows, C) = hidden * gelu(gate) (erf form). */
void op_geglu(float *out, const float *in, int rows, int C);

/* Row softmax over the last dim, numerically stable: x (rows, cols), in place allowed. */
void op_softmax(float *out, const float *in, int rows, int cols);

/* ---- attention --------------------------------------------------------- */

/* Scaled-dot-product attention, memory-efficient: tiled over keys with an
 * online softmax, so memory is O(T*d) and no (Tq x Tk) matrix is ever formed.
 *   q   (B, Tq, heads*d)     -- head h uses columns [h*d, (h+1)*d)
 *   k,v (B, Tk, heads*d)
 *   out (B, Tq, heads*d)
 * scale: usually 1/sqrt(d).
 * key_mask: NULL, or (B, Tk) bytes, 0 = that key is hidden from every query
 *   (CLIP vision masked attention). A query row with no visible key outputs 0.
 * causal: query i sees keys j <= i only (CLIP text); needs Tq == Tk.
 * scratch: op_attention_scratch() floats. */
size_t op_attention_scratch(int Tq, int Tk, int heads, int d);
void op_attention(float *out, const float *q, const float *k, const float *v, int B, int Tq,
                  int Tk, int heads, int d, float scale, const uint8_t *key_mask, int causal,
                  float *scratch);

/* ---- shape and elementwise --------------------------------------------- */

/* Nearest 2x upsample: in (N, C, H, W) -> out (N, C, 2H, 2W). */
void op_upsample_nearest2x(float *out, const float *in, int N, int C, int H, int W);

void op_add(float *out, const float *a, const float *b, size_t n);  /* in place allowed */
void op_mul(float *out, const float *a, const float *b, size_t n);  /* in place allowed */
void op_scale(float *out, const float *a, float s, size_t n);       /* in place allowed */
/* Number of NaN / inf values in x (a count: independent of the thread count). */
size_t op_count_nonfinite(const float *x, size_t n);
/* out[n, c, i] += bias[n, c] for x (N, C, HW): adds a per-(sample, channel)
 * value, e.g. the projected time embedding in a ResNet block. */
void op_add_channel_bias(float *x, const float *bias, int N, int C, int HW);

/* torch.cat([a, b], dim=1): a (N, Ca, HW), b (N, Cb, HW) -> out (N, Ca+Cb, HW). */
void op_concat_channels(float *out, const float *a, const float *b, int N, int Ca, int Cb, int HW);

/* (N, C, HW) <-> (N, HW, C): the transformer blocks' layout changes. */
void op_nchw_to_nhwc(float *out, const float *in, int N, int C, int HW);
void op_nhwc_to_nchw(float *out, const float *in, int N, int C, int HW);

/* diffusers get_timestep_embedding: timesteps (N) -> out (N, dim).
 * half = dim/2; freq_i = exp(-ln(max_period) * i / (half - shift));
 * emb = [sin(t*freq), cos(t*freq)], swapped to [cos, sin] when
 * flip_sin_to_cos; a zero column is appended when dim is odd. SD: dim 320,
 * flip_sin_to_cos 1, shift 0 (freq_shift in the UNet config), max_period 10000. */
void op_timestep_embedding(float *out, const float *timesteps, int N, int dim,
                           int flip_sin_to_cos, float downscale_freq_shift, float max_period);

#endif
