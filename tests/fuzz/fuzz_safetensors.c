/* Fuzz target: safetensors files.
 *
 * The input is a whole .safetensors file. Covers st_open (header length,
 * JSON, dtypes, shapes, offsets, overlaps, __metadata__) and every accessor;
 * the weights layer over the file (lookups, F16/BF16/F64 conversion, shape
 * checks, unused lists); and sd_model_load on it as a single-file checkpoint
 * (architecture detection, configs inferred from tensor shapes or read from
 * tests/fixtures/sd/tiny-pipe, LDM name mapping, model building up to the
 * shape checks). Run from the repository root. Invariants: every tensor is found by its own name, and its bytes
 * (read in full) lie inside the mapping. */
#include "fuzz_util.h"

#include "io/safetensors.h"
#include "models/loader.h"
#include "models/weights.h"

#define FUZZ_ST_MAX_CONVERT (1u << 20) /* bytes of one tensor converted to f32 */

static void fuzz_st_tensors(st_file *f) {
    oir_error err = {0};
    char shape[256];
    for (int i = 0; i < st_count(f); i++) {
        const tensor *t = st_tensor_at(f, i);
        const char *name = st_name_at(f, i);
        FUZZ_ASSERT(t && name);
        FUZZ_ASSERT(st_find(f, name) == t);
        tensor_shape_str(t, shape, sizeof shape);
        int64_t numel = tensor_numel(t);
        size_t nbytes = tensor_nbytes(t);
        FUZZ_ASSERT(numel >= 0);
        if (nbytes == 0 || nbytes > FUZZ_ST_MAX_CONVERT) continue;
        /* read every byte: catches a tensor whose data runs out of the file */
        const unsigned char *p = t->data;
        unsigned sum = 0;
        for (size_t k = 0; k < nbytes; k++) sum += p[k];
        (void)sum;
        float *out = malloc((size_t)numel * sizeof *out);
        if (!out) continue;
        convert_to_f32(out, t->data, t->type, (size_t)numel, &err);
        free(out);
    }
    st_find(f, "");
    st_find(f, "__metadata__");
    st_metadata(f, "format");
    st_metadata(f, "");
}

static void fuzz_st_weights(st_file *f) {
    oir_error err = {0};
    weights *w = NULL;
    if (FUZZ_CALL("weights_from_file", weights_from_file(&w, f, "fuzz", "", NULL, &err), &err))
        return;
    for (int i = 0; i < st_count(f); i++) {
        const tensor *t = st_tensor_at(f, i);
        const char *name = st_name_at(f, i);
        if (tensor_nbytes(t) > FUZZ_ST_MAX_CONVERT) continue;
        weights_has(w, name);
        weights_find(w, name);
        weights_get(w, name, t->ndim, t->shape);
        weights_getv(w, name, 2, 3, 4); /* usually the wrong shape */
    }
    weights_get(w, "not.in.the.file", 1, (const int64_t[]){1});
    weights_finish(w, &err);
    for (int i = 0; i < weights_unused_count(w); i++) weights_unused_at(w, i);
    for (int i = 0; i < weights_problem_count(w); i++) weights_problem_at(w, i);
    weights_count(w);
    weights_numel(w);
    weights_owned_bytes(w);
    weights_free(w);
}

static int fuzz_safetensors_one(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("model.safetensors", data, size);
    oir_error err = {0};
    st_file *f = NULL;
    if (FUZZ_CALL("st_open", st_open(&f, path, &err), &err) == OIR_OK) {
        FUZZ_ASSERT(st_count(f) >= 0);
        fuzz_st_tensors(f);
        fuzz_st_weights(f);
        st_close(f);
    }
    /* the same file as a single-file checkpoint (no tokenizer): configs
     * inferred from the shapes, then from a config folder (the test
     * fixture's tiny pipeline, relative to the repository root) */
    sd_load_params p = sd_load_default_params();
    p.components = SD_TEXT_ENCODER | SD_UNET | SD_VAE;
    sd_model *m = NULL;
    if (FUZZ_CALL("sd_model_load", sd_model_load(&m, path, &p, &err), &err) == OIR_OK)
        sd_model_free(m);
    p.config_dir = "tests/fixtures/sd/tiny-pipe";
    p.components = SD_UNET | SD_VAE; /* past a text encoder that failed above */
    if (FUZZ_CALL("sd_model_load config_dir", sd_model_load(&m, path, &p, &err), &err) == OIR_OK)
        sd_model_free(m);
    return 0;
}

FUZZ_ENTRY(fuzz_safetensors_one)
