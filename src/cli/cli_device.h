/* --device D on the commands that load models (edit, batch, mask,
 * generate, reconstruct): one parser, one help line. Header-only, so the
 * objects that link cli_sd.o alone (bench/shapes) need nothing more. */
#ifndef OIR_CLI_DEVICE_H
#define OIR_CLI_DEVICE_H

#include <stdlib.h>

#include "core/backend.h"
#include "core/error.h"

#define CLI_DEVICE_HELP                                                                            \
    "  --device D             where the models run (UNet, VAE, text encoder, CLIP scorer): cpu\n"  \
    "                         (default), vulkan or vulkan:N (oir info --devices; $OIR_DEVICE);\n"   \
    "                         vulkan[:N],fp16-weights stores the weights as fp16\n"

/* The device to load onto: the flag's value, else $OIR_DEVICE, else NULL
 * (the CPU). OIR_E_ARG naming --device or OIR_DEVICE when the value is not
 * cpu, vulkan or vulkan:N (+ ",fp16-weights"). */
static inline int cli_device(const char *flag, const char **out, oir_error *err) {
    const char *env = getenv("OIR_DEVICE");
    const char *v = flag ? flag : env && *env ? env : NULL;
    *out = v;
    if (!v) return OIR_OK;
    be_device_spec spec;
    int rc = be_parse_device(v, &spec, err);
    if (rc) oir_error_prefix(err, "%s", flag ? "--device" : "OIR_DEVICE");
    return rc;
}

#endif
