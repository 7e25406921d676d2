/* Automatic masks on the command line (`oir mask`, and `--mask auto` or a
 * pair without --mask in `oir edit` / `oir search`): the flags, the working
 * mask back at the photo's size, and the report entry. */
#ifndef OIR_CLI_MASK_H
#define OIR_CLI_MASK_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "io/image_fit.h"
#include "oir.h"

/* A pair's --mask (or YAML mask entry) that asks for inference: none (NULL)
 * or "auto". A file named auto is given as ./auto. */
int cli_mask_is_auto(const char *spec);

/* --method NAME (NULL: the default), --threshold (< 0: the default),
 * --dilate (< 0: the default) and the seed into *p (from
 * oir_mask_default_params). Bad values are OIR_E_ARG naming the flag; the
 * flag names are the caller's (`oir mask`: --method, `oir edit`:
 * --mask-method). */
int cli_mask_params(oir_mask_params *p, const char *method_flag, const char *method, const char *threshold_flag,
                    float threshold, const char *dilate_flag, int dilate, unsigned long long seed, oir_error *err);

/* The working-size mask (work_w x work_h bytes) at the photo's size: resized
 * (nearest) to the crop region the working image shows, 0 outside it. */
int cli_mask_to_photo(image *photo, const unsigned char *work, const image_fit *fit, oir_error *err);

/* {"method", "threshold", "dilate_px", "area", "components", "unet_rows",
 * "warning", "message"} of an inferred mask. */
cJSON *cli_mask_info_json(const oir_mask_info *info);
/* "none", "empty: threshold lowered", "flat: whole image", "whole image". */
const char *cli_mask_warning_name(int warning);

/* The first line of a sheet's mask caption and the rest ("MASK: AUTO
 * (NOISE)\nT 0.90, AREA 6%, 20 UNET ROWS"). */
void cli_mask_caption(char *buf, size_t cap, const oir_mask_info *info);

/* "noise: threshold 0.90, dilate 1 px; attention: ...; combined: ..." (the
 * methods' measured defaults), for help texts. */
const char *cli_mask_defaults_text(void);

/* "FROM->TO" of --pair (cmd_edit.c). */
int cli_split_pair(const char *spec, char *from, char *to, size_t cap, oir_error *err);

#endif
