/* safetensors: validated, read-only mmap reader and a writer.
 *
 * st_open validates the whole header before anything is used: a regular
 * file (io/file.h: a FIFO is refused, not waited on), header length inside
 * the file, well-formed JSON without duplicate keys (io/json.h: two
 * "__metadata__" or two "dtype" are refused), every dtype known, shape x
 * dtype size == byte length (64-bit, overflow-checked; a shape holding a 0
 * has 0 elements whatever its other dims), offsets inside the data area, no
 * overlapping tensors. Every
 * tensor's data points into the read-only mapping (zero copy). */
#ifndef OIR_IO_SAFETENSORS_H
#define OIR_IO_SAFETENSORS_H

#include <stddef.h>

#include "core/tensor.h"

typedef struct st_file st_file;

int st_open(st_file **out, const char *path, oir_error *err);
void st_close(st_file *f);

const char *st_path(const st_file *f);
int st_count(const st_file *f);
/* i-th tensor in file order (sorted by offset); its name via st_name_at. */
const tensor *st_tensor_at(const st_file *f, int i);
const char *st_name_at(const st_file *f, int i);
/* NULL when absent. */
const tensor *st_find(const st_file *f, const char *name);
/* __metadata__ value for key, or NULL. */
const char *st_metadata(const st_file *f, const char *key);

/* Writer: collects (name, tensor) pairs (data is copied at add time) and
 * writes a valid file. st_writer_save writes atomically through io/outfile.h
 * (a fresh exclusive temp file renamed over path), so a failed save never
 * leaves a truncated file at path. */
typedef struct st_writer st_writer;
st_writer *st_writer_new(void);
int st_writer_add(st_writer *w, const char *name, const tensor *t, oir_error *err);
/* Convenience: float32 data with the given shape. */
int st_writer_add_f32(st_writer *w, const char *name, const float *data, int ndim,
                      const int64_t *shape, oir_error *err);
int st_writer_save(st_writer *w, const char *path, oir_error *err);
void st_writer_free(st_writer *w);

#endif
