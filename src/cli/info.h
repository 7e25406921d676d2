/* oir info's parts: the summary printed first (info_summary.c) and the
 * per-component details of a folder (info_model.c). */
#ifndef OIR_CLI_INFO_H
#define OIR_CLI_INFO_H

#include "io/safetensors.h"
#include "models/loader.h"

/* Kind, version guess, native image size, each component's parameters and
 * dtypes, the tokenizer and the total of a planned folder (diffusers
 * pipeline, CLIP, one component). Reads safetensors headers and configs. */
int info_summary_folder(const char *path, const sd_plan *plan, oir_error *err);
/* The same for a .safetensors file (single-file LDM checkpoint or any other),
 * then its tensors (name, dtype, shape) when `tensors`, else a hint. */
void info_summary_file(const char *path, const st_file *f, int tensors);
/* Every tensor of every weight file of the plan, per component. */
int info_folder_tensors(const sd_plan *plan, oir_error *err);
/* OIR_E_UNSUPPORTED with loader_refuse_pickle's message when a component the
 * loader reads has pickle weights only (the loader's order and message). */
int info_folder_pickle(const sd_plan *plan, oir_error *err);

/* oir info --devices: the CPU and the Vulkan devices found (or why none). */
int info_devices(void);

#endif
