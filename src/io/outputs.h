/* Where a command may write: never over an input, never over a user's file,
 * and a run's files replaced together.
 *
 * Inputs vs outputs (output_check_inputs, before anything is written): an
 * output is refused when it is one of the inputs (the same (st_dev, st_ino)
 * when both exist, else the same resolved path), and an output folder also
 * when an input lies inside it (resolved path, or any file in it with an
 * input's (st_dev, st_ino): a hard link), since the run replaces that folder.
 *
 * Single files (output_check_file): a path that does not exist, or a regular
 * file that oir wrote: a PNG whose tEXt chunk "Software" starts with "oir"
 * (image_save_png writes it), or a safetensors file whose __metadata__ has
 * "writer": "oir" (st_writer_save writes it). Anything else there (a user's
 * photo, a folder, a symlink, a FIFO) is refused, never replaced.
 *
 * Run folders (output_dir_*): a run writes into a fresh folder beside the
 * destination, ".<name>.<random>.tmp", and output_dir_commit swaps it in:
 *   - destination missing: renamed into place;
 *   - destination an empty folder, or an oir output folder (it holds the
 *     marker file OUTPUT_DIR_MARKER, which lists every file and folder the
 *     run wrote, and nothing that is not listed; or, written before markers
 *     existed, it holds only oir's file names -- edited.png, input.png,
 *     report.json, pair<N>_sheet.png, pair<N>_mask.png, pair<N>_k<N>.png, in
 *     it or in one level of case folders -- and a report.json with
 *     "oir_version"): exchanged with the new one
 *     (renameat2 RENAME_EXCHANGE, or two renames where unsupported), then the
 *     old run's listed files are removed;
 *   - anything else (a file, a symlink, a folder holding other files) is
 *     refused, and nothing is written or removed.
 * output_dir_abort (any failure) removes the temp folder; the old output is
 * untouched. */
#ifndef OIR_IO_OUTPUTS_H
#define OIR_IO_OUTPUTS_H

#include <stddef.h>

#include "core/error.h"

#define OUTPUT_DIR_MARKER ".oir-run"

typedef struct {
    const char *path; /* NULL entries are skipped */
    const char *what; /* the option that gave it, e.g. "--image" */
} output_input;

/* OIR_E_ARG when writing out (is_dir: a folder replaced as a whole; the
 * option naming it is out_what, e.g. "--out") would overwrite or delete one
 * of the n inputs; the message names both. */
int output_check_inputs(const char *out, const char *out_what, int is_dir, const output_input *in, int n,
                        oir_error *err);

/* OIR_OK when path may be written as a single file (see above), else
 * OIR_E_ARG naming it. */
int output_check_file(const char *path, const char *what, oir_error *err);

typedef struct {
    char *shown; /* the destination as given, for messages */
    char *final; /* the destination, resolved */
    char *tmp;   /* the fresh folder being written */
    char **names; /* relative paths written ("case/", "case/edited.png"), in order */
    int n_names, cap_names;
} output_dir;

/* Checks the destination can take a run (see above) and makes the temp folder. */
int output_dir_begin(output_dir *d, const char *path, const char *what, oir_error *err);
/* The path of rel inside the temp folder (malloc'd, NULL with err set),
 * recorded for the marker. rel: a file name or "folder/name"; the folder
 * must have been made with output_dir_mkdir; no "..", no leading '/' or '.'. */
char *output_dir_path(output_dir *d, const char *rel, oir_error *err);
int output_dir_mkdir(output_dir *d, const char *rel, oir_error *err);
/* Writes the marker and swaps the folder into place; releases d. When files
 * of the old output could not all be removed, note (if given) says where
 * they were left; otherwise note is set to "". */
int output_dir_commit(output_dir *d, char *note, size_t note_cap, oir_error *err);
/* Removes the temp folder and releases d; safe on a zeroed or released d. */
void output_dir_abort(output_dir *d);
/* Removes everything under path (symlinks are removed, never followed; at
 * most 16 folders deep) and path itself. Only for a run's own temp folders
 * (output_dir_abort; oir batch's leftovers of a killed run). */
void output_remove_tree(const char *path);

#endif
