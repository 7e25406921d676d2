/* The models inside an oir_context, for the library's own files (plan,
 * calibration); the struct itself stays private to oir.c. */
#ifndef OIR_EDIT_CONTEXT_H
#define OIR_EDIT_CONTEXT_H

#include "models/loader.h"
#include "oir.h"

const sd_model *oir_context_sd_model(const oir_context *ctx);
const clip_model *oir_context_clip_model(const oir_context *ctx);

#endif
