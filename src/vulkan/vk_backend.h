/* The Vulkan compute backend's entry points (plain C: no Vulkan type
 * leaves src/vulkan/). Built when the Makefile finds `pkg-config vulkan` and
 * glslc (OIR_HAVE_VULKAN); the loader (libvulkan.so.1) is opened at run
 * time, so the library runs, and says why, where Vulkan is missing. */
#ifndef OIR_VULKAN_VK_BACKEND_H
#define OIR_VULKAN_VK_BACKEND_H

#include "core/backend.h"

/* The devices the loader reports, in its order (index = vulkan:N). */
int vk_list_devices(be_device_info *out, int max, int *n, oir_error *err);
/* A backend on device `index`; OIR_E_UNSUPPORTED with the reason when there
 * is no loader, no driver or no such device, or fp16_weights without the
 * device's 16-bit storage (be_device_spec.fp16_weights). */
int vk_backend_create(oir_backend **out, int index, int fp16_weights, oir_error *err);

#endif
