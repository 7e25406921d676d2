/* safetensors reader/writer: round trip, lookup, and every kind of hostile
 * file named in the issue, each rejected with a message naming the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static char dir[256];

static const char *tmp_path(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

/* Writes header JSON + n data bytes as a raw safetensors file. */
static void write_raw(const char *path, const char *json, size_t data_bytes, long long claimed_len) {
    FILE *fp = fopen(path, "wb");
    unsigned long long len = claimed_len >= 0 ? (unsigned long long)claimed_len : strlen(json);
    for (int i = 0; i < 8; i++) fputc((int)((len >> (8 * i)) & 0xff), fp);
    fputs(json, fp);
    for (size_t i = 0; i < data_bytes; i++) fputc((int)(i & 0xff), fp);
    fclose(fp);
}

static void expect_reject(const char *label, const char *path, const char *needle) {
    st_file *f = NULL;
    oir_error err = {0};
    int rc = st_open(&f, path, &err);
    CHECK(rc != OIR_OK && f == NULL, "%s: should be rejected", label);
    CHECK(strstr(err.message, path) != NULL, "%s: message should name the file: %s", label, err.message);
    CHECK(strstr(err.message, needle) != NULL, "%s: message should say '%s': %s", label, needle, err.message);
    printf("  ok   reject %-28s -> %s\n", label, err.message);
    st_close(f);
}

static void test_round_trip(void) {
    st_writer *w = st_writer_new();
    oir_error err = {0};
    float a[6] = {1, -2, 3.5f, 4, 5, 6};
    uint16_t h[3] = {f32_to_f16(1.5f), f32_to_f16(-2.0f), f32_to_f16(0.25f)};
    int64_t sa[2] = {2, 3}, sh[1] = {3};
    tensor th = {.type = DT_F16, .ndim = 1, .data = h};
    th.shape[0] = sh[0];
    CHECK(st_writer_add_f32(w, "layer.weight", a, 2, sa, &err) == OIR_OK, "add f32: %s", err.message);
    CHECK(st_writer_add(w, "half", &th, &err) == OIR_OK, "add f16: %s", err.message);
    CHECK(st_writer_add_f32(w, "layer.weight", a, 2, sa, &err) != OIR_OK, "duplicate name refused");
    char p[512];
    snprintf(p, sizeof p, "%s", tmp_path("ok.safetensors"));
    CHECK(st_writer_save(w, p, &err) == OIR_OK, "save: %s", err.message);
    st_writer_free(w);
    CHECK(access(tmp_path("ok.safetensors.tmp"), F_OK) != 0, "no .tmp left behind");

    st_file *f = NULL;
    CHECK(st_open(&f, p, &err) == OIR_OK, "reopen: %s", err.message);
    if (!f) return;
    CHECK(st_count(f) == 2, "count %d", st_count(f));
    const tensor *t = st_find(f, "layer.weight");
    CHECK(t && t->type == DT_F32 && tensor_shape_eq(t, 2, sa), "f32 tensor shape");
    if (t) th_close("round trip f32", t->data, a, 6, 0, 0);
    const tensor *t2 = st_find(f, "half");
    float back[3];
    if (t2) convert_to_f32(back, t2->data, t2->type, 3, &err);
    float ref[3] = {1.5f, -2.0f, 0.25f};
    CHECK(t2 && t2->type == DT_F16, "f16 tensor kept as f16");
    if (t2) th_close("round trip f16", back, ref, 3, 0, 0);
    CHECK(st_find(f, "missing") == NULL, "missing name gives NULL");
    CHECK(st_find(f, "half") && st_find(f, "layer.weight"), "lookup both");
    CHECK(((uintptr_t)st_tensor_at(f, 0)->data % 8) == 0, "writer aligns data to 8 bytes");
    st_close(f);
}

static void test_metadata_and_empty(void) {
    const char *p = tmp_path("meta.safetensors");
    write_raw(p, "{\"__metadata__\":{\"format\":\"pt\"},\"x\":{\"dtype\":\"BF16\",\"shape\":[0,4],\"data_offsets\":[0,0]}}", 0, -1);
    st_file *f = NULL;
    oir_error err = {0};
    CHECK(st_open(&f, p, &err) == OIR_OK, "metadata file: %s", err.message);
    if (!f) return;
    CHECK(st_metadata(f, "format") && !strcmp(st_metadata(f, "format"), "pt"), "metadata value");
    CHECK(st_count(f) == 1 && st_find(f, "x") && tensor_numel(st_find(f, "x")) == 0, "empty tensor");
    st_close(f);
}

static void test_hostile(void) {
    const char *p;
    p = tmp_path("missing.safetensors");
    expect_reject("missing file", p, "cannot open");

    p = tmp_path("short.safetensors");
    FILE *fp = fopen(p, "wb");
    fputs("abc", fp);
    fclose(fp);
    expect_reject("truncated (3 bytes)", p, "truncated");

    p = tmp_path("empty.safetensors");
    fclose(fopen(p, "wb"));
    expect_reject("empty file", p, "truncated");

    p = tmp_path("hlen.safetensors");
    write_raw(p, "{}", 0, 1000000);
    expect_reject("header past end", p, "past the end");

    p = tmp_path("notjson.safetensors");
    write_raw(p, "{this is not json", 0, -1);
    expect_reject("header not JSON", p, "JSON");

    p = tmp_path("array.safetensors");
    write_raw(p, "[1,2,3]", 0, -1);
    expect_reject("header not an object", p, "JSON");

    p = tmp_path("dtype.safetensors");
    write_raw(p, "{\"x\":{\"dtype\":\"F7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1);
    expect_reject("unknown dtype", p, "unknown dtype");

    p = tmp_path("range.safetensors");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, -1);
    expect_reject("offsets out of range", p, "outside the data area");

    p = tmp_path("inverted.safetensors");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, -1);
    expect_reject("inverted offsets", p, "outside the data area");

    p = tmp_path("overlap.safetensors");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, -1);
    expect_reject("overlapping tensors", p, "overlap");

    p = tmp_path("shape.safetensors");
    write_raw(p, "{\"x\":{\"dtype\":\"F16\",\"shape\":[3,3],\"data_offsets\":[0,16]}}", 16, -1);
    expect_reject("shape vs byte length", p, "span");

    p = tmp_path("negdim.safetensors");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, -1);
    expect_reject("negative dimension", p, "non-negative");

    p = tmp_path("hugeshape.safetensors");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, -1);
    expect_reject("overflowing shape", p, "overflow");

    p = tmp_path("dup.safetensors");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, -1);
    expect_reject("duplicate name", p, "twice");

    /* Duplicate JSON keys: cJSON keeps both; the reader must refuse them
     * (two __metadata__ objects overflowed the metadata arrays and freed
     * the same strings twice; two "dtype" keys were silently resolved). */
    p = tmp_path("dupmeta.safetensors");
    write_raw(p, "{\"__metadata__\":{\"b\":\"2\",\"c\":\"3\",\"d\":\"4\"},\"__metadata__\":{\"a\":\"1\"}}",
              0, -1);
    expect_reject("duplicate __metadata__", p, "\"__metadata__\" appears twice");

    p = tmp_path("dupfield.safetensors");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -1);
    expect_reject("duplicate field in an entry", p, "\"dtype\" appears twice");

    p = tmp_path("dupmetakey.safetensors");
    write_raw(p, "{\"__metadata__\":{\"format\":\"pt\",\"format\":\"np\"}}", 0, -1);
    expect_reject("duplicate metadata key", p, "\"format\" appears twice");

    p = tmp_path("inf.safetensors");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1e999],\"data_offsets\":[0,4]}}", 4, -1);
    expect_reject("number out of double range", p, "out of range");

    p = tmp_path("fields.safetensors");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, -1);
    expect_reject("missing data_offsets", p, "data_offsets");

    p = tmp_path("meta.bad.safetensors");
    write_raw(p, "{\"__metadata__\":{\"k\":3}}", 0, -1);
    expect_reject("non-string metadata", p, "metadata");

    /* Truncate a valid file: the data area shrinks below the offsets. */
    st_writer *w = st_writer_new();
    oir_error err = {0};
    float a[64] = {0};
    int64_t s[1] = {64};
    st_writer_add_f32(w, "a", a, 1, s, &err);
    p = tmp_path("cut.safetensors");
    st_writer_save(w, p, &err);
    st_writer_free(w);
    unsigned char len8[8] = {0};
    FILE *hf = fopen(p, "rb");
    if (hf) {
        if (fread(len8, 1, 8, hf) != 8) len8[0] = 0;
        fclose(hf);
    }
    long hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | len8[i];
    CHECK(truncate(p, 8 + hl + 64) == 0, "truncate"); /* 64 of the 256 data bytes */
    expect_reject("truncated data", p, "outside the data area");
    CHECK(truncate(p, 20) == 0, "truncate");
    expect_reject("truncated header", p, "past the end");
}

/* Shapes whose product does not fit in 64 bits but which hold no elements
 * are valid safetensors (the Rust reader multiplies with checked_mul in
 * u64); element counts must come out 0, without signed overflow. */
static void test_shape_arithmetic(void) {
    const char *p = tmp_path("zero_huge.safetensors");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2147483648,4294967296,0],\"data_offsets\":[0,0]}}",
              0, -1);
    st_file *f = NULL;
    oir_error err = {0};
    if (CHECK(st_open(&f, p, &err) == OIR_OK, "[2^31, 2^32, 0]: %s", err.message)) {
        const tensor *t = st_find(f, "x");
        CHECK(t && tensor_numel(t) == 0 && tensor_nbytes(t) == 0, "[2^31, 2^32, 0] holds 0 elements");
        st_close(f);
    }
    /* tensor_numel itself: overflow and negative dims give -1, never a wrapped count */
    tensor t = {.type = DT_F32, .ndim = 2};
    t.shape[0] = (int64_t)1 << 40, t.shape[1] = (int64_t)1 << 40;
    CHECK(tensor_numel(&t) == -1, "numel [2^40, 2^40] = %lld, expected -1 (overflow)",
          (long long)tensor_numel(&t));
    CHECK(tensor_nbytes(&t) == SIZE_MAX, "nbytes [2^40, 2^40] saturates");
    t.shape[0] = (int64_t)1 << 31, t.shape[1] = (int64_t)1 << 32;
    t.ndim = 3;
    t.shape[2] = 0;
    CHECK(tensor_numel(&t) == 0, "numel [2^31, 2^32, 0] = 0");
    t.ndim = 2;
    t.shape[0] = (int64_t)1 << 61, t.shape[1] = 3; /* fits in elements, not in bytes */
    CHECK(tensor_numel(&t) > 0 && tensor_nbytes(&t) == SIZE_MAX, "bytes overflow saturates");
    t.shape[0] = -1;
    CHECK(tensor_numel(&t) == -1, "negative dimension gives -1");
    tensor a;
    int64_t big[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
    CHECK(tensor_alloc(&a, DT_F32, 2, big, &err) == OIR_E_NOMEM && a.data == NULL,
          "tensor_alloc of [2^40, 2^40] refused: %s", err.message);
}

/* Random byte flips of a valid file must never crash (run under ASan in CI). */
static void test_mutations(void) {
    st_writer *w = st_writer_new();
    oir_error err = {0};
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t s2[2] = {2, 4}, s1[1] = {8};
    st_writer_add_f32(w, "w.weight", a, 2, s2, &err);
    st_writer_add_f32(w, "w.bias", a, 1, s1, &err);
    const char *p = tmp_path("fuzz.safetensors");
    st_writer_save(w, p, &err);
    st_writer_free(w);
    FILE *fp = fopen(p, "rb");
    unsigned char buf[1024];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    srand(1234);
    int opened = 0, rejected = 0;
    for (int iter = 0; iter < 400; iter++) {
        unsigned char m[1024];
        memcpy(m, buf, n);
        int flips = 1 + rand() % 4;
        for (int k = 0; k < flips; k++) m[rand() % (int)n] = (unsigned char)rand();
        size_t len = rand() % 5 == 0 ? (size_t)(rand() % (int)n) : n;
        const char *q = tmp_path("fuzz_m.safetensors");
        fp = fopen(q, "wb");
        fwrite(m, 1, len, fp);
        fclose(fp);
        st_file *f = NULL;
        err.message[0] = 0;
        if (st_open(&f, q, &err) == OIR_OK) {
            opened++;
            for (int i = 0; i < st_count(f); i++) { /* touch every byte in range */
                const tensor *t = st_tensor_at(f, i);
                volatile unsigned char sum = 0;
                for (size_t b = 0; b < tensor_nbytes(t); b++) sum ^= ((unsigned char *)t->data)[b];
            }
            st_close(f);
        } else {
            rejected++;
            if (!strstr(err.message, q)) CHECK(0, "mutation rejected without naming the file: %s", err.message);
        }
    }
    CHECK(opened + rejected == 400, "400 mutations handled (%d opened, %d rejected)", opened, rejected);
    printf("  ok   mutations: %d opened, %d rejected\n", opened, rejected);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/oir_test_st_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_metadata_and_empty();
    test_hostile();
    test_shape_arithmetic();
    test_mutations();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    return th_summary();
}
