/* --device D on the commands that load models (edit, batch, mask,
 * generate, reconstruct): one parser, one help line. */
#ifndef OIR_CLI_DEVICE_H
#define OIR_CLI_DEVICE_H

#include "core/error.h"

#define CLI_DEVICE_HELP                                                                            \
    "  --device D             where the UNet runs: cpu (default), vulkan or vulkan:N (see\n"         \
    "                         oir info --devices; $OIR_DEVICE); the VAE and CLIP stay on the CPU\n"

/* The device to load onto: the flag's value, else $OIR_DEVICE, else NULL
 * (the CPU). OIR_E_ARG naming --device or OIR_DEVICE when the value is not
 * cpu, vulkan or vulkan:N. */
int cli_device(const char *flag, const char **out, oir_error *err);

#endif
