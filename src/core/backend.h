/* The backend table: where the models' computation runs (docs/BACKENDS.md,
 * DESIGN.md §8). A backend owns buffers (device memory, or host memory for
 * the CPU) and runs the ops the models use on them:
 *
 *     oir_backend *be;
 *     be_device_spec spec;
 *     if (be_parse_device("vulkan:0", &spec, &err) || be_create(&be, &spec, &err)) ...
 *     be_buffer *buf;
 *     be_buffer_alloc(be, bytes, &buf, &err);
 *     be_view x = be_view_of(buf), w = be_view_f(x, 1024), y = be_view_f(x, 2048);
 *     be_upload(be, x, host_x, 1024 * sizeof(float));
 *     be_linear(be, y, x, w, BE_NONE, rows, in_f, out_f);  // queued, not yet run
 *     ... more ops ...
 *     if (be_download(be, host_y, y, n * sizeof(float), &err)) ...  // runs them all
 *     be_buffer_free(be, buf);
 *     be_destroy(be);
 *
 * - Views: every tensor operand is a be_view, a buffer and a byte offset, so
 *   one buffer can be carved like an arena. Float tensors need offsets that
 *   are multiples of 4; the key mask of be_attention is bytes (any offset).
 *   Dimensions and layouts are those of src/core/ops.h, one entry per kernel
 *   there (PyTorch order: (N, C, H, W), (B, T, C), Linear (out, in)).
 * - Batching: ops are queued into one command stream and run, in order, at
 *   the next be_sync, be_download or be_count_nonfinite (one submission, one
 *   fence on Vulkan; the CPU backend runs each op at once). Uploads are
 *   ordered with the ops and copy the host data before returning.
 * - Errors are sticky: an op returns its status (OIR_OK, or the code of the
 *   first failure, after which every op is skipped); be_sync / be_download
 *   report the message in err and clear the state. Bad shapes, views out of
 *   their buffer, a buffer of another backend and forbidden aliasing are
 *   OIR_E_ARG / OIR_E_INTERNAL with a message naming the op and operand.
 * - Aliasing: `out` may be an input only where ops.h says "in place allowed"
 *   (norms, activations, softmax, add/mul/scale, add_channel_bias,
 *   ddim_step, guidance, copy of the same range); otherwise overlapping
 *   views are refused.
 * - Threads: a backend is used by one thread at a time; the CPU backend runs
 *   its ops on the worker pool (pool.h), like op_*.
 *
 * Vulkan types never leave src/vulkan/. */
#ifndef OIR_CORE_BACKEND_H
#define OIR_CORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct oir_backend oir_backend;
typedef struct be_buffer be_buffer;
typedef struct be_ops be_ops;

/* A buffer's common head; each backend's buffer type starts with it. */
struct be_buffer {
    size_t size;         /* bytes */
    oir_backend *owner;
    /* 1: fp16 weights (be_weights_from_host on a backend with fp16_weights):
     * only the weight operands of linear, conv2d and matmul read it (views
     * count fp16 elements, 2 bytes each); every other use is refused. */
    int f16;
};

/* A tensor operand: buffer + byte offset. buf NULL: no tensor (optional
 * operands such as a bias). */
typedef struct {
    be_buffer *buf;
    size_t off;
} be_view;

#define BE_NONE ((be_view){NULL, 0})
static inline be_view be_view_of(be_buffer *b) { return (be_view){b, 0}; }
/* v advanced by `floats` float32 elements / by `bytes` bytes. */
static inline be_view be_view_f(be_view v, size_t floats) { return (be_view){v.buf, v.off + floats * 4}; }
static inline be_view be_view_b(be_view v, size_t bytes) { return (be_view){v.buf, v.off + bytes}; }

typedef enum { BE_CPU = 0, BE_VULKAN = 1 } be_kind;

typedef struct {
    be_kind kind;
    int index; /* Vulkan: the device's index in be_vulkan_devices (0: the first) */
    /* Vulkan: weights from be_weights_from_host are stored as fp16 (half the
     * memory) and widened to fp32 as the GEMM / convolution shaders load
     * them; activations and arithmetic stay fp32. Needs the device's
     * storageBuffer16BitAccess (be_create refuses without it). Off by
     * default; "vulkan:N,fp16-weights" or OIR_VULKAN_FP16_WEIGHTS=1. */
    int fp16_weights;
} be_device_spec;

typedef enum { BE_ACT_SILU = 0, BE_ACT_GELU, BE_ACT_GELU_TANH, BE_ACT_QUICK_GELU, BE_ACT_COUNT } be_act_kind;

/* The table. Entries receive arguments already checked by the be_* wrappers
 * below (positive sizes, views inside their buffers, no forbidden aliasing),
 * and return OIR_OK or a status after be_fail. Every op is required. */
struct be_ops {
    const char *kind; /* "cpu", "vulkan" */
    void (*destroy)(oir_backend *be);
    int (*buffer_alloc)(oir_backend *be, size_t bytes, be_buffer **out, oir_error *err);
    /* Wraps host memory without a copy; NULL where the backend cannot (then
     * be_buffer_from_host allocates and uploads). */
    int (*buffer_wrap)(oir_backend *be, void *host, size_t bytes, be_buffer **out, oir_error *err);
    void (*buffer_free)(oir_backend *be, be_buffer *b);
    /* The host address of a buffer's byte 0 when the backend's memory is the
     * host's (CPU), else NULL. */
    void *(*buffer_host)(oir_backend *be, be_buffer *b);
    int (*upload)(oir_backend *be, be_view dst, const void *src, size_t bytes);
    int (*download)(oir_backend *be, void *dst, be_view src, size_t bytes);
    int (*sync)(oir_backend *be);
    int (*copy)(oir_backend *be, be_view dst, be_view src, size_t bytes);

    int (*matmul)(oir_backend *be, be_view out, be_view a, be_view b, int M, int N, int K, int b_trans,
                  float alpha, float beta, int batch, size_t stride_a, size_t stride_b, size_t stride_out);
    int (*linear)(oir_backend *be, be_view out, be_view in, be_view weight, be_view bias, int rows, int in_f,
                  int out_f);
    int (*conv2d)(oir_backend *be, be_view out, be_view in, be_view weight, be_view bias, int N, int C_in,
                  int H, int W, int C_out, int k, int stride, int pad);
    int (*group_norm)(oir_backend *be, be_view out, be_view in, be_view gamma, be_view beta, int N, int C,
                      int HW, int groups, float eps, int fuse_silu);
    int (*layer_norm)(oir_backend *be, be_view out, be_view in, be_view gamma, be_view beta, int rows, int C,
                      float eps, int fuse_silu);
    int (*act)(oir_backend *be, be_act_kind kind, be_view out, be_view in, size_t n);
    int (*geglu)(oir_backend *be, be_view out, be_view in, int rows, int C);
    int (*softmax)(oir_backend *be, be_view out, be_view in, int rows, int cols);
    int (*attention)(oir_backend *be, be_view out, be_view q, be_view k, be_view v, int B, int Tq, int Tk,
                     int heads, int d, float scale, be_view key_mask, int causal);
    int (*add)(oir_backend *be, be_view out, be_view a, be_view b, size_t n);
    int (*mul)(oir_backend *be, be_view out, be_view a, be_view b, size_t n);
    int (*scale)(oir_backend *be, be_view out, be_view a, float s, size_t n);
    int (*add_channel_bias)(oir_backend *be, be_view x, be_view bias, int N, int C, int HW);
    int (*concat_channels)(oir_backend *be, be_view out, be_view a, be_view b, int N, int Ca, int Cb, int HW);
    int (*upsample_nearest2x)(oir_backend *be, be_view out, be_view in, int N, int C, int H, int W);
    int (*nchw_to_nhwc)(oir_backend *be, be_view out, be_view in, int N, int C, int HW);
    int (*nhwc_to_nchw)(oir_backend *be, be_view out, be_view in, int N, int C, int HW);
    int (*timestep_embedding)(oir_backend *be, be_view out, const float *timesteps, int N, int dim,
                              int flip_sin_to_cos, float downscale_freq_shift, float max_period);
    int (*ddim_step)(oir_backend *be, be_view out, be_view eps, be_view sample, int B, size_t n,
                     const float *alphabar, const float *alphabar_next, int clip, float clip_range,
                     be_view pred_x0);
    int (*guidance)(oir_backend *be, be_view out, be_view uncond, be_view cond, float g, size_t n);
    int (*count_nonfinite)(oir_backend *be, be_view x, size_t n, size_t *count);
};

/* A backend's common head; each backend's state starts with it. */
struct oir_backend {
    const be_ops *ops;
    char name[160];  /* "cpu", "vulkan:0 (llvmpipe (LLVM 15.0.6, 256 bits))" */
    int status;      /* sticky: OIR_OK or the first failure's code */
    oir_error error; /* its message */
    long ops_queued; /* ops run since creation (statistics) */
    long syncs;      /* submissions waited for (statistics) */
    int fp16_weights; /* be_weights_from_host stores fp16 (be_device_spec) */
    /* bytes one view may span as an operand (Vulkan: maxStorageBufferRange,
     * lowered by OIR_VULKAN_MAX_RANGE); 0: no limit (CPU) */
    size_t max_view_bytes;
    /* bytes through be_upload / be_download (be_buffer_from_host's upload
     * included; be_count_nonfinite's count not): what crosses the bus on a
     * device, host copies on the CPU (statistics, tests) */
    unsigned long long bytes_uploaded, bytes_downloaded;
};

/* ---- devices ------------------------------------------------------------ */

/* "cpu", "vulkan" (= vulkan:0) or "vulkan:N", the Vulkan ones optionally
 * followed by ",fp16-weights" (fp16_weights; OIR_VULKAN_FP16_WEIGHTS=1 in
 * the environment sets it too); anything else OIR_E_ARG. */
int be_parse_device(const char *s, be_device_spec *out, oir_error *err);
/* 1 when this build has the Vulkan backend (OIR_HAVE_VULKAN). */
int be_have_vulkan(void);

typedef struct {
    char name[256];
    char type[16];              /* "discrete", "integrated", "virtual", "cpu", "other" */
    char driver[128];           /* driver name and info ("llvmpipe Mesa 22.3.6 (LLVM 15.0.6)") */
    unsigned api_major, api_minor, api_patch;
    unsigned long long memory;  /* bytes of its largest device-local heap */
    unsigned long long max_storage_range; /* maxStorageBufferRange: one view's bytes at most */
    unsigned shared_memory;     /* maxComputeSharedMemorySize, bytes */
    int subgroup_size;          /* 0: unknown */
    int fp16;                   /* shaderFloat16 */
    int storage16;              /* storageBuffer16BitAccess */
    int coopmat;                /* VK_KHR_cooperative_matrix (or the NV extension) */
} be_device_info;

#define BE_MAX_DEVICES 16
/* The Vulkan devices found (at most max). Fails with a message saying why
 * none can be listed: no Vulkan in this build, no loader (libvulkan.so.1),
 * no driver (ICD), or no device. *n is 0 on failure. */
int be_vulkan_devices(be_device_info *out, int max, int *n, oir_error *err);

/* A backend on the device of spec: the CPU always works; Vulkan fails with a
 * clear message when the build has no Vulkan, the loader or a driver is
 * missing or the index names no device. */
int be_create(oir_backend **out, const be_device_spec *spec, oir_error *err);
oir_backend *be_create_cpu(void);
void be_destroy(oir_backend *be);

/* ---- buffers, transfers, sync ------------------------------------------- */

int be_buffer_alloc(oir_backend *be, size_t bytes, be_buffer **out, oir_error *err);
/* Host memory as a buffer: wrapped without a copy where the backend shares
 * the host's memory (CPU: `host` must outlive the buffer, and is written by
 * ops that write the buffer), else allocated and uploaded (synced). */
int be_buffer_from_host(oir_backend *be, const void *host, size_t bytes, be_buffer **out, oir_error *err);
/* n float32 weights as a buffer for the weight operands of be_linear,
 * be_conv2d and be_matmul: on a backend with fp16_weights, converted to
 * fp16 (round to nearest even, f32_to_f16) and stored in 2 n bytes (the
 * buffer's f16 set); elsewhere be_buffer_from_host of 4 n bytes. */
int be_weights_from_host(oir_backend *be, const float *host, size_t n, be_buffer **out, oir_error *err);
/* Frees a buffer (NULL is a no-op); queued ops are run first when they may
 * use it. */
void be_buffer_free(oir_backend *be, be_buffer *b);
/* Host address of a view on a backend that shares the host's memory, else NULL. */
void *be_host_ptr(oir_backend *be, be_view v);

int be_upload(oir_backend *be, be_view dst, const void *src, size_t bytes);
/* Runs the queued ops, then copies `bytes` of src to host memory. */
int be_download(oir_backend *be, void *dst, be_view src, size_t bytes, oir_error *err);
/* Runs the queued ops and waits; returns (and clears) the sticky status,
 * with its message in err. */
int be_sync(oir_backend *be, oir_error *err);
/* Records a failure (the first one sticks); returns code. For backends. */
int be_fail(oir_backend *be, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- ops (ops.h's kernels; shapes as there) ----------------------------- */

/* dst = src, bytes (multiple of 4). dst == src is a no-op; other overlaps refused. */
int be_copy(oir_backend *be, be_view dst, be_view src, size_t bytes);
/* op_matmul over `batch` matrices: out_i (M, N) = alpha a_i (M, K) @ b_i (K, N)
 * [b_i (N, K) used as b_i^T when b_trans] + beta out_i, with x_i = x +
 * i * stride_x floats (stride 0: one matrix shared by the batch). beta == 0:
 * out is not read. */
int be_matmul(oir_backend *be, be_view out, be_view a, be_view b, int M, int N, int K, int b_trans,
              float alpha, float beta, int batch, size_t stride_a, size_t stride_b, size_t stride_out);
/* op_linear: out (rows, out_f) = in (rows, in_f) @ weight (out_f, in_f)^T + bias (out_f, optional). */
int be_linear(oir_backend *be, be_view out, be_view in, be_view weight, be_view bias, int rows, int in_f,
              int out_f);
/* op_conv2d: in (N, C_in, H, W), weight (C_out, C_in, k, k), bias (C_out) optional. */
int be_conv2d(oir_backend *be, be_view out, be_view in, be_view weight, be_view bias, int N, int C_in, int H,
              int W, int C_out, int k, int stride, int pad);
int be_group_norm(oir_backend *be, be_view out, be_view in, be_view gamma, be_view beta, int N, int C, int HW,
                  int groups, float eps, int fuse_silu);
/* op_layer_norm, then SiLU when fuse_silu. */
int be_layer_norm(oir_backend *be, be_view out, be_view in, be_view gamma, be_view beta, int rows, int C,
                  float eps, int fuse_silu);
/* op_silu / op_gelu / op_gelu_tanh / op_quick_gelu over n floats. */
int be_act(oir_backend *be, be_act_kind kind, be_view out, be_view in, size_t n);
int be_geglu(oir_backend *be, be_view out, be_view in, int rows, int C);
int be_softmax(oir_backend *be, be_view out, be_view in, int rows, int cols);
/* op_attention (no Tq x Tk matrix on any backend); key_mask: BE_NONE or
 * (B, Tk) bytes, 0 = hidden; causal needs Tq == Tk. */
int be_attention(oir_backend *be, be_view out, be_view q, be_view k, be_view v, int B, int Tq, int Tk,
                 int heads, int d, float scale, be_view key_mask, int causal);
int be_add(oir_backend *be, be_view out, be_view a, be_view b, size_t n);
int be_mul(oir_backend *be, be_view out, be_view a, be_view b, size_t n);
int be_scale(oir_backend *be, be_view out, be_view a, float s, size_t n);
int be_add_channel_bias(oir_backend *be, be_view x, be_view bias, int N, int C, int HW);
int be_concat_channels(oir_backend *be, be_view out, be_view a, be_view b, int N, int Ca, int Cb, int HW);
int be_upsample_nearest2x(oir_backend *be, be_view out, be_view in, int N, int C, int H, int W);
int be_nchw_to_nhwc(oir_backend *be, be_view out, be_view in, int N, int C, int HW);
int be_nhwc_to_nchw(oir_backend *be, be_view out, be_view in, int N, int C, int HW);
/* op_timestep_embedding of host timesteps (N): out (N, dim). */
int be_timestep_embedding(oir_backend *be, be_view out, const float *timesteps, int N, int dim,
                          int flip_sin_to_cos, float downscale_freq_shift, float max_period);
/* The DDIM transfer of ddim_step / ddim_invert_step (ops_diffusion.h), per
 * row b < B of n values: a = alphabar[b], a2 = alphabar_next[b] (host
 * arrays, read during the call). out may alias sample or eps; pred_x0
 * (optional) receives x0. */
int be_ddim_step(oir_backend *be, be_view out, be_view eps, be_view sample, int B, size_t n,
                 const float *alphabar, const float *alphabar_next, int clip, float clip_range,
                 be_view pred_x0);
/* ddim_guidance: out = uncond + g (cond - uncond); out may alias either. */
int be_guidance(oir_backend *be, be_view out, be_view uncond, be_view cond, float g, size_t n);
/* op_count_nonfinite; runs the queued ops first (a sync). */
int be_count_nonfinite(oir_backend *be, be_view x, size_t n, size_t *count, oir_error *err);

#endif
