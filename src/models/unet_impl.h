/* Internal to unet.c / unet_bind.c: what a UNet holds on its backend
 * (models/unet.h unet_bind) and the per-forward buffers kept there. */
#ifndef OIR_MODELS_UNET_IMPL_H
#define OIR_MODELS_UNET_IMPL_H

#include "core/arena.h"
#include "core/backend.h"
#include "models/sd_blocks.h"
#include "models/unet.h"

/* What a model holds on its backend (unet_bind): the weights, the phase
 * kernels of the upsamplers (host-memory backends), and the per-forward
 * state kept between forwards so that a forward allocates nothing once the
 * sizes repeat. */
typedef struct unet_dev unet_dev;
struct unet_dev {
    oir_backend *be;
    int own_be;                        /* created by unet_bind(m, NULL): destroyed with it */
    int host;                          /* the backend shares the host's memory (CPU) */
    sd_binder wb;                      /* the weights */
    sd_conv phase[UNET_MAX_BLOCKS];    /* up[i].upsample's (4 C_out, C_in, 2, 2) (host only) */
    float *phase_host[UNET_MAX_BLOCKS];
    be_buffer *act;                    /* activations: the host arena wrapped (CPU), or device memory */
    size_t act_cap;
    const unsigned char *act_host;     /* CPU: the host address act wraps */
    be_buffer *ones;                   /* ones_n floats of 1.0 (sd_linear_add_be's bias) */
    size_t ones_n;
    float *hbuf;                       /* downloads for taps and the capture (non-host backends) */
    size_t hbuf_cap;
    int *cls;                          /* per batch row: the first row with the same context */
    int cls_cap;
};

/* The activations' buffer for one forward (see unet_bind.c). */
int unet_dev_arena(unet_dev *d, arena *a, size_t need, sd_dev_arena *da, oir_error *err);
/* At least n floats of 1.0 in d->ones. */
int unet_dev_ones(unet_dev *d, size_t n, oir_error *err);
/* d->cls[b]: the first row whose context is byte-identical to row b's. */
int unet_dev_classes(unet_dev *d, const float *context, int B, size_t ctx_n, oir_error *err);

#endif
