/* safetensors reader (validated mmap) and writer.
 * Format: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
 *  "__metadata__": {"k": "v"}}, then the data area. */
#include "io/safetensors.h"
#include "io/outfile.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/file.h"
#include "io/json.h"

#define ST_MAX_HEADER (100u << 20) /* 100 MB of JSON is already absurd */

typedef struct {
    char *name;
    tensor t;
    uint64_t begin, end;
} st_entry;

struct st_file {
    char *path;
    unsigned char *map;
    size_t map_size;
    st_entry *entries; /* sorted by offset */
    int count;
    int *by_name; /* indices sorted by name, for bsearch */
    char **meta_keys, **meta_values;
    int meta_count;
};

static int entry_offset_cmp(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : (x->end > y->end);
}

static int name_index_cmp(const void *a, const void *b, void *entries) {
    const st_entry *e = entries;
    return strcmp(e[*(const int *)a].name, e[*(const int *)b].name);
}

/* A JSON number that is a non-negative integer below 2^53. */
static int json_u64(const cJSON *n, uint64_t *out) {
    if (!cJSON_IsNumber(n)) return 0;
    double d = n->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d) return 0;
    *out = (uint64_t)d;
    return 1;
}

void st_close(st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->count; i++) free(f->entries[i].name);
    for (int i = 0; i < f->meta_count; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    free(f->entries);
    free(f->by_name);
    if (f->map && f->map_size) munmap(f->map, f->map_size);
    free(f->path);
    free(f);
}

static int parse_metadata(st_file *f, const cJSON *meta, oir_error *err) {
    if (!cJSON_IsObject(meta))
        return oir_fail(err, OIR_E_FORMAT, "%s: __metadata__ is not an object", f->path);
    if (f->meta_keys) /* json_parse refuses duplicate keys: cannot happen */
        return oir_fail(err, OIR_E_INTERNAL, "%s: __metadata__ read twice", f->path);
    int n = cJSON_GetArraySize(meta);
    f->meta_keys = calloc((size_t)n + 1, sizeof(char *));
    f->meta_values = calloc((size_t)n + 1, sizeof(char *));
    if (!f->meta_keys || !f->meta_values) return oir_fail(err, OIR_E_NOMEM, "%s: out of memory", f->path);
    const cJSON *kv;
    cJSON_ArrayForEach(kv, meta) {
        if (!cJSON_IsString(kv))
            return oir_fail(err, OIR_E_FORMAT, "%s: __metadata__ value of '%s' is not a string",
                            f->path, kv->string);
        f->meta_keys[f->meta_count] = strdup(kv->string);
        f->meta_values[f->meta_count] = strdup(kv->valuestring);
        f->meta_count++;
    }
    return OIR_OK;
}

static int parse_entry(st_file *f, const cJSON *item, uint64_t data_size, st_entry *e,
                       oir_error *err) {
    const char *name = item->string;
    if (!cJSON_IsObject(item))
        return oir_fail(err, OIR_E_FORMAT, "%s: tensor '%s': header entry is not an object", f->path, name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo))
        return oir_fail(err, OIR_E_FORMAT,
                        "%s: tensor '%s': header entry needs dtype (string), shape and data_offsets (arrays)",
                        f->path, name);
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    if (!e->name) return oir_fail(err, OIR_E_NOMEM, "%s: out of memory", f->path);
    if (dtype_from_name(jd->valuestring, &e->t.type) != 0)
        return oir_fail(err, OIR_E_FORMAT, "%s: tensor '%s': unknown dtype '%s'", f->path, name,
                        jd->valuestring);
    int nd = cJSON_GetArraySize(js);
    if (nd > TENSOR_MAX_DIMS)
        return oir_fail(err, OIR_E_FORMAT, "%s: tensor '%s': %d dimensions (max %d)", f->path, name,
                        nd, TENSOR_MAX_DIMS);
    e->t.ndim = nd;
    uint64_t numel = 1;
    for (int i = 0; i < nd; i++) {
        uint64_t d;
        if (!json_u64(cJSON_GetArrayItem(js, i), &d))
            return oir_fail(err, OIR_E_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer",
                            f->path, name, i);
        if (d && numel > UINT64_MAX / d)
            return oir_fail(err, OIR_E_FORMAT, "%s: tensor '%s': shape overflows", f->path, name);
        numel *= d;
        e->t.shape[i] = (int64_t)d;
    }
    if (cJSON_GetArraySize(jo) != 2 || !json_u64(cJSON_GetArrayItem(jo, 0), &e->begin) ||
        !json_u64(cJSON_GetArrayItem(jo, 1), &e->end))
        return oir_fail(err, OIR_E_FORMAT, "%s: tensor '%s': data_offsets must be two non-negative integers",
                        f->path, name);
    if (e->begin > e->end || e->end > data_size)
        return oir_fail(err, OIR_E_FORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu] outside the data area of %llu bytes",
                        f->path, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                        (unsigned long long)data_size);
    size_t esz = dtype_size(e->t.type);
    if (numel > UINT64_MAX / esz || numel * esz != e->end - e->begin)
        return oir_fail(err, OIR_E_FORMAT,
                        "%s: tensor '%s': shape x %s size = %llu bytes but data_offsets span %llu bytes",
                        f->path, name, dtype_name(e->t.type), (unsigned long long)(numel * esz),
                        (unsigned long long)(e->end - e->begin));
    return OIR_OK;
}

int st_open(st_file **out, const char *path, oir_error *err) {
    *out = NULL;
    int rc = OIR_OK, fd = -1;
    cJSON *root = NULL;
    st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return oir_fail(err, OIR_E_NOMEM, "%s: out of memory", path);
    }
    uint64_t fsize = 0;
    if ((rc = file_open_regular(path, &fd, &fsize, err))) goto cleanup;
    if (fsize < 8) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: truncated: %llu bytes, a safetensors file has at least 8",
                      path, (unsigned long long)fsize);
        goto cleanup;
    }
    if (fsize > SIZE_MAX) {
        rc = oir_fail(err, OIR_E_UNSUPPORTED, "%s: %llu bytes do not fit in the address space", path,
                      (unsigned long long)fsize);
        goto cleanup;
    }
    f->map_size = (size_t)fsize;
    f->map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        rc = oir_fail(err, OIR_E_IO, "%s: cannot map: %s", path, strerror(errno));
        goto cleanup;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->map[i];
    if (hlen > f->map_size - 8) {
        rc = oir_fail(err, OIR_E_FORMAT,
                      "%s: header length %llu runs past the end of the file (%zu bytes): truncated or not safetensors",
                      path, (unsigned long long)hlen, f->map_size);
        goto cleanup;
    }
    if (hlen > ST_MAX_HEADER || hlen < 2) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: implausible header length %llu", path, (unsigned long long)hlen);
        goto cleanup;
    }
    const char *json = (const char *)f->map + 8;
    if (json[0] != '{') {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: header is not a JSON object", path);
        goto cleanup;
    }
    /* duplicate keys (two __metadata__, two "dtype"), non-finite numbers and
     * deep nesting are refused here, for the whole header */
    char what[1100];
    snprintf(what, sizeof what, "%s: header", path);
    if ((rc = json_parse(&root, json, (size_t)hlen, what, err))) goto cleanup;
    if (!cJSON_IsObject(root)) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: header is not a JSON object", path);
        goto cleanup;
    }
    uint64_t data_size = f->map_size - 8 - hlen;
    const unsigned char *data = f->map + 8 + hlen;
    int n = cJSON_GetArraySize(root);
    f->entries = calloc((size_t)n + 1, sizeof *f->entries);
    f->by_name = calloc((size_t)n + 1, sizeof *f->by_name);
    if (!f->entries || !f->by_name) {
        rc = oir_fail(err, OIR_E_NOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (!item->string) continue;
        if (!strcmp(item->string, "__metadata__")) {
            if ((rc = parse_metadata(f, item, err))) goto cleanup;
            continue;
        }
        rc = parse_entry(f, item, data_size, &f->entries[f->count], err);
        f->count++; /* count even on failure so cleanup frees the name */
        if (rc) goto cleanup;
    }
    qsort(f->entries, (size_t)f->count, sizeof *f->entries, entry_offset_cmp);
    for (int i = 0; i < f->count; i++) {
        st_entry *e = &f->entries[i];
        if (i > 0 && e->begin < f->entries[i - 1].end) {
            rc = oir_fail(err, OIR_E_FORMAT, "%s: tensors '%s' and '%s' overlap in the data area", path,
                          f->entries[i - 1].name, e->name);
            goto cleanup;
        }
        e->t.data = (void *)(data + e->begin);
        f->by_name[i] = i;
    }
    qsort_r(f->by_name, (size_t)f->count, sizeof *f->by_name, name_index_cmp, f->entries);
    for (int i = 1; i < f->count; i++)
        if (!strcmp(f->entries[f->by_name[i]].name, f->entries[f->by_name[i - 1]].name)) {
            rc = oir_fail(err, OIR_E_FORMAT, "%s: tensor '%s' appears twice", path,
                          f->entries[f->by_name[i]].name);
            goto cleanup;
        }
cleanup:
    cJSON_Delete(root);
    if (fd >= 0) close(fd);
    if (rc) {
        st_close(f);
        return rc;
    }
    *out = f;
    return OIR_OK;
}

const char *st_path(const st_file *f) { return f->path; }
int st_count(const st_file *f) { return f->count; }
const tensor *st_tensor_at(const st_file *f, int i) {
    return i >= 0 && i < f->count ? &f->entries[i].t : NULL;
}
const char *st_name_at(const st_file *f, int i) {
    return i >= 0 && i < f->count ? f->entries[i].name : NULL;
}

const tensor *st_find(const st_file *f, const char *name) {
    int lo = 0, hi = f->count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(name, f->entries[f->by_name[mid]].name);
        if (!c) return &f->entries[f->by_name[mid]].t;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

const char *st_metadata(const st_file *f, const char *key) {
    for (int i = 0; i < f->meta_count; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

/* ---- writer ------------------------------------------------------------ */

struct st_writer {
    char **names;
    tensor *tensors; /* owned copies */
    int count, cap;
};

st_writer *st_writer_new(void) { return calloc(1, sizeof(st_writer)); }

void st_writer_free(st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->count; i++) {
        free(w->names[i]);
        tensor_free(&w->tensors[i]);
    }
    free(w->names);
    free(w->tensors);
    free(w);
}

int st_writer_add(st_writer *w, const char *name, const tensor *t, oir_error *err) {
    if (!name || !*name || !strcmp(name, "__metadata__"))
        return oir_fail(err, OIR_E_ARG, "safetensors writer: invalid tensor name");
    for (int i = 0; i < w->count; i++)
        if (!strcmp(w->names[i], name))
            return oir_fail(err, OIR_E_ARG, "safetensors writer: tensor '%s' added twice", name);
    if (w->count == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        char **nn = realloc(w->names, (size_t)cap * sizeof *nn);
        if (nn) w->names = nn;
        tensor *nt = realloc(w->tensors, (size_t)cap * sizeof *nt);
        if (nt) w->tensors = nt;
        if (!nn || !nt) return oir_fail(err, OIR_E_NOMEM, "safetensors writer: out of memory");
        w->cap = cap;
    }
    tensor *copy = &w->tensors[w->count];
    int rc = tensor_alloc(copy, t->type, t->ndim, t->shape, err);
    if (rc) return rc;
    if (tensor_nbytes(t)) memcpy(copy->data, t->data, tensor_nbytes(t));
    if (!(w->names[w->count] = strdup(name))) {
        tensor_free(copy);
        return oir_fail(err, OIR_E_NOMEM, "safetensors writer: out of memory");
    }
    w->count++;
    return OIR_OK;
}

int st_writer_add_f32(st_writer *w, const char *name, const float *data, int ndim,
                      const int64_t *shape, oir_error *err) {
    tensor t = {.type = DT_F32, .ndim = ndim, .data = (void *)data};
    if (ndim < 0 || ndim > TENSOR_MAX_DIMS) return oir_fail(err, OIR_E_ARG, "safetensors writer: bad ndim");
    memcpy(t.shape, shape, (size_t)ndim * sizeof *shape);
    return st_writer_add(w, name, &t, err);
}

int st_writer_save(st_writer *w, const char *path, oir_error *err) {
    int rc = OIR_OK;
    char *header = NULL;
    outfile out = {0};
    cJSON *root = cJSON_CreateObject();
    uint64_t offset = 0;
    /* marks the file as oir's: io/outputs.h replaces only files it wrote */
    cJSON *meta = root ? cJSON_AddObjectToObject(root, "__metadata__") : NULL;
    if (meta) cJSON_AddStringToObject(meta, "writer", "oir");
    for (int i = 0; root && i < w->count; i++) {
        const tensor *t = &w->tensors[i];
        cJSON *e = cJSON_AddObjectToObject(root, w->names[i]);
        cJSON *shape = cJSON_CreateArray();
        cJSON *offs = cJSON_CreateArray();
        if (!e || !shape || !offs) {
            cJSON_Delete(shape);
            cJSON_Delete(offs);
            rc = oir_fail(err, OIR_E_NOMEM, "%s: out of memory", path);
            goto cleanup;
        }
        cJSON_AddStringToObject(e, "dtype", dtype_name(t->type));
        for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON_AddItemToObject(e, "shape", shape);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
        offset += tensor_nbytes(t);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
        cJSON_AddItemToObject(e, "data_offsets", offs);
    }
    if (!root || !(header = cJSON_PrintUnformatted(root))) {
        rc = oir_fail(err, OIR_E_NOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    size_t hlen = strlen(header), padded = (hlen + 7) / 8 * 8; /* data 8-byte aligned */
    if ((rc = outfile_open(&out, path, err))) goto cleanup;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len8, 1, 8, out.fp) == 8 && fwrite(header, 1, hlen, out.fp) == hlen;
    for (size_t i = hlen; ok && i < padded; i++) ok = fputc(' ', out.fp) != EOF;
    for (int i = 0; ok && i < w->count; i++) {
        size_t nb = tensor_nbytes(&w->tensors[i]);
        ok = fwrite(w->tensors[i].data, 1, nb, out.fp) == nb;
    }
    if (!ok) {
        rc = oir_fail(err, OIR_E_IO, "%s: write failed: %s", path, strerror(errno));
        goto cleanup;
    }
    rc = outfile_commit(&out, err);
cleanup:
    outfile_abort(&out); /* no-op after a commit */
    cJSON_free(header);
    cJSON_Delete(root);
    return rc;
}
