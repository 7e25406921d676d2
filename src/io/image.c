/* Images: allocation, PNG/JPEG reading (magic-byte detection), PNG writing,
 * quantisation and model-tensor conversion. Resizing is in image_resize.c,
 * masks in mask.c. See image.h for the layout and the rules. */
#include "io/image.h"
#include "io/outfile.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <png.h>
#include <jpeglib.h>
#include <jerror.h>

#include "io/file.h"

/* Files larger than this are refused before reading (a 16384^2 RGB PNG
 * stored uncompressed is ~0.8 GB; anything bigger is not a sane input). */
#define IMAGE_MAX_FILE_BYTES ((size_t)1 << 30)
/* Progressive JPEGs with more scans than this are refused: a crafted file
 * with thousands of tiny scans takes minutes to decode (libjpeg-turbo's own
 * TurboJPEG API applies the same kind of limit). */
#define JPEG_MAX_SCANS 500
/* Pixels a byte of Huffman-coded JPEG can hold at most (see jpeg_decode_inner). */
#define JPEG_MAX_PIXELS_PER_BYTE 512
/* Bytes of PNG rows a byte of zlib data can hold at most: deflate codes a
 * 258-byte match in 2 bits at best (~1032:1). */
#define PNG_MAX_EXPANSION 1032

/* ---------------------------------------------------------------- basics */

int image_check_size(const char *what, long long width, long long height, oir_error *err) {
    if (width <= 0 || height <= 0)
        return oir_fail(err, OIR_E_FORMAT, "%s: invalid image size %lldx%lld", what, width,
                        height);
    if (width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE || width * height > IMAGE_MAX_PIXELS)
        return oir_fail(err, OIR_E_UNSUPPORTED,
                        "%s: image is %lldx%lld, over the limit of %d pixels per side and %lld "
                        "pixels in all",
                        what, width, height, IMAGE_MAX_SIDE, (long long)IMAGE_MAX_PIXELS);
    return OIR_OK;
}

int image_alloc(image *img, int width, int height, int channels, oir_error *err) {
    memset(img, 0, sizeof *img);
    int rc = image_check_size("image_alloc", width, height, err);
    if (rc) return rc;
    if (channels < 1 || channels > 4)
        return oir_fail(err, OIR_E_ARG, "image_alloc: %d channels (expected 1 to 4)", channels);
    size_t n = (size_t)width * (size_t)height * (size_t)channels;
    img->data = calloc(n, sizeof(float));
    if (!img->data)
        return oir_fail(err, OIR_E_NOMEM, "image_alloc: cannot allocate %dx%dx%d floats", width,
                        height, channels);
    img->width = width;
    img->height = height;
    img->channels = channels;
    return OIR_OK;
}

void image_free(image *img) {
    if (!img) return;
    free(img->data);
    memset(img, 0, sizeof *img);
}

int image_copy(image *out, const image *in, oir_error *err) {
    int rc = image_alloc(out, in->width, in->height, in->channels, err);
    if (rc) return rc;
    memcpy(out->data, in->data,
           (size_t)in->width * (size_t)in->height * (size_t)in->channels * sizeof(float));
    return OIR_OK;
}

/* Round half to even (numpy's round) of clamp(x, 0, 1) * 255; NaN -> 0. */
static inline uint8_t to_u8_round(float x) {
    if (!(x > 0.0f)) return 0;
    if (x >= 1.0f) return 255;
    return (uint8_t)nearbyintf(x * 255.0f);
}

void image_quantize(image *img, int truncate) {
    size_t n = (size_t)img->width * (size_t)img->height * (size_t)img->channels;
    for (size_t i = 0; i < n; i++) {
        float x = img->data[i];
        float q;
        if (!(x > 0.0f)) q = 0.0f;
        else if (x >= 1.0f) q = 255.0f;
        else q = truncate ? floorf(x * 255.0f) : nearbyintf(x * 255.0f);
        img->data[i] = q / 255.0f;
    }
}

void image_to_tensor(const image *img, float *dst) {
    /* (H, W, C) -> (1, C, H, W). x * 255 recovers the 8-bit value exactly for
     * x = float32(k / 255), so this equals torch's u8.float() / 127.5 - 1. */
    const size_t hw = (size_t)img->width * (size_t)img->height;
    const int c_n = img->channels;
    for (int c = 0; c < c_n; c++)
        for (size_t i = 0; i < hw; i++)
            dst[(size_t)c * hw + i] = img->data[i * c_n + c] * 255.0f / 127.5f - 1.0f;
}

int image_from_tensor(image *out, const float *src, int channels, int width, int height,
                      oir_error *err) {
    int rc = image_alloc(out, width, height, channels, err);
    if (rc) return rc;
    const size_t hw = (size_t)width * (size_t)height;
    for (int c = 0; c < channels; c++)
        for (size_t i = 0; i < hw; i++) {
            float v = src[(size_t)c * hw + i] / 2.0f + 0.5f;
            if (!(v > 0.0f)) v = 0.0f; /* also NaN */
            if (v > 1.0f) v = 1.0f;
            out->data[i * channels + c] = v;
        }
    return OIR_OK;
}

/* ----------------------------------------------------------- file bytes */

/* Reads the whole file; *buf is malloc'd (caller frees). Anything but a
 * regular file (a FIFO, /dev/zero) is refused before it is read. */
static int read_file(const char *path, uint8_t **buf, size_t *len, oir_error *err) {
    char *b = NULL;
    int rc = file_read_regular(path, IMAGE_MAX_FILE_BYTES, "an image file", &b, len, err);
    if (rc) return rc;
    if (*len == 0) {
        free(b);
        return oir_fail(err, OIR_E_FORMAT, "%s: empty file, expected a PNG or JPEG image", path);
    }
    *buf = (uint8_t *)b;
    return OIR_OK;
}

typedef enum { FMT_UNKNOWN, FMT_PNG, FMT_JPEG } img_format;

static img_format sniff(const uint8_t *b, size_t n, const char **other) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    *other = NULL;
    if (n >= 8 && memcmp(b, png_sig, 8) == 0) return FMT_PNG;
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return FMT_JPEG;
    if (n >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0)) *other = "GIF";
    else if (n >= 2 && b[0] == 'B' && b[1] == 'M') *other = "BMP";
    else if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0) *other = "WebP";
    else if (n >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0)) *other = "TIFF";
    else if (n >= 4 && memcmp(b, "\x89HDF", 4) == 0) *other = "HDF5";
    return FMT_UNKNOWN;
}

/* Decoded 8-bit RGB pixels, (H, W, 3). */
typedef struct {
    uint8_t *px;
    int width, height;
} rgb8;

/* ------------------------------------------------------------------ PNG */

typedef struct {
    jmp_buf jb;
    char msg[200];
    const uint8_t *src;
    size_t len, pos;
    png_structp png;
    png_infop info;
    png_bytep *rows;
    const char *path;
    oir_error *err;
    int rc; /* set before a deliberate png_error (e.g. size limit) */
} png_rd;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_rd *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "unknown error");
    longjmp(c->jb, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* the library never prints; ancillary-chunk warnings are harmless */
}

static void png_read_mem(png_structp png, png_bytep out, png_size_t n) {
    png_rd *c = png_get_io_ptr(png);
    if (n > c->len - c->pos) png_error(png, "file is truncated");
    memcpy(out, c->src + c->pos, n);
    c->pos += n;
}

/* Everything that can longjmp happens here; resources live in *c so that the
 * caller frees them whatever happens. */
static int png_decode_inner(png_rd *c, rgb8 *o) {
    if (setjmp(c->jb)) {
        if (c->rc) return c->rc;
        return oir_fail(c->err, OIR_E_FORMAT, "%s: corrupt PNG (%s)", c->path, c->msg);
    }
    png_set_read_fn(c->png, c, png_read_mem);
    /* decode_png checked the IHDR bytes and image_check_size below gives the
     * message; libpng's own limits are the same sides, a second guard. */
    png_set_user_limits(c->png, IMAGE_MAX_SIDE, IMAGE_MAX_SIDE);
    png_set_chunk_malloc_max(c->png, (png_alloc_size_t)8 << 20); /* text / ICC chunks */
    png_read_info(c->png, c->info);
    png_uint_32 w, h;
    int depth, ctype, interlace;
    png_get_IHDR(c->png, c->info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    int rc = image_check_size(c->path, (long long)w, (long long)h, c->err);
    if (rc) return rc;

    png_set_strip_16(c->png); /* high byte, as Pillow's "RGB;16B" unpacker */
    png_set_packing(c->png);
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(c->png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(c->png);
    png_set_strip_alpha(c->png); /* drops alpha and tRNS: not composited */
    if (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(c->png);
    png_set_interlace_handling(c->png);
    png_read_update_info(c->png, c->info);
    size_t rowbytes = png_get_rowbytes(c->png, c->info);
    if (rowbytes != (size_t)w * 3 || png_get_channels(c->png, c->info) != 3 ||
        png_get_bit_depth(c->png, c->info) != 8)
        return oir_fail(c->err, OIR_E_INTERNAL,
                        "%s: PNG transforms gave %zu bytes per row, expected %zu", c->path,
                        rowbytes, (size_t)w * 3);

    o->px = malloc((size_t)w * h * 3);
    c->rows = malloc((size_t)h * sizeof(png_bytep));
    if (!o->px || !c->rows)
        return oir_fail(c->err, OIR_E_NOMEM, "%s: cannot allocate %ux%u pixels", c->path,
                        (unsigned)w, (unsigned)h);
    for (png_uint_32 y = 0; y < h; y++) c->rows[y] = o->px + (size_t)y * w * 3;
    png_read_image(c->png, c->rows);
    png_read_end(c->png, NULL);
    o->width = (int)w;
    o->height = (int)h;
    return OIR_OK;
}

static int decode_png(const char *path, const uint8_t *buf, size_t len, rgb8 *o,
                      oir_error *err) {
    /* IHDR must come first (8-byte signature, then length, type, width,
     * height); check the size before libpng reads further chunks. */
    if (len >= 26 && memcmp(buf + 12, "IHDR", 4) == 0) {
        long long w = ((long long)buf[16] << 24) | (buf[17] << 16) | (buf[18] << 8) | buf[19];
        long long h = ((long long)buf[20] << 24) | (buf[21] << 16) | (buf[22] << 8) | buf[23];
        if (w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE || w * h > IMAGE_MAX_PIXELS)
            return image_check_size(path, w, h, err);
        /* The rows (a filter byte each) come out of deflate at most ~1032:1:
         * a header declaring more than the file can hold is a truncated or
         * crafted file, refused before the rows are allocated. Interlaced
         * images have more row bytes, so this bound holds for them too. */
        int depth = buf[24], ctype = buf[25];
        int chans = ctype == 2 ? 3 : ctype == 4 ? 2 : ctype == 6 ? 4 : 1;
        long long row = (w * chans * depth + 7) / 8 + 1, raw = row * h;
        if (w > 0 && h > 0 && depth > 0 && depth <= 16 &&
            raw > (long long)PNG_MAX_EXPANSION * (long long)len + 4096)
            return oir_fail(err, OIR_E_FORMAT,
                            "%s: corrupt PNG (declares %lldx%lld pixels, %lld bytes of rows, more "
                            "than its %zu bytes can hold: truncated or damaged)",
                            path, w, h, raw, len);
    }
    png_rd c;
    memset(&c, 0, sizeof c);
    c.src = buf;
    c.len = len;
    c.path = path;
    c.err = err;
    c.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, png_on_error, png_on_warning);
    if (c.png) c.info = png_create_info_struct(c.png);
    if (!c.png || !c.info) {
        png_destroy_read_struct(c.png ? &c.png : NULL, NULL, NULL);
        return oir_fail(err, OIR_E_NOMEM, "%s: cannot create PNG reader", path);
    }
    int rc = png_decode_inner(&c, o);
    png_destroy_read_struct(&c.png, &c.info, NULL);
    free(c.rows);
    if (rc) {
        free(o->px);
        memset(o, 0, sizeof *o);
    }
    return rc;
}

/* ----------------------------------------------------------------- JPEG */

typedef struct {
    struct jpeg_error_mgr pub; /* first: libjpeg casts cinfo->err to this */
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX + 64];
    int rc;
} jpeg_err;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jb, 1);
}

/* libjpeg "warns" about damage it papers over: a premature end of the file
 * or of a scan, bad Huffman or arithmetic codes, a lost restart marker, an
 * inconsistent progression. It then fills the rest of the image with grey
 * and returns success, so every warning is an error for us except these
 * harmless ones, which lose no pixel data:
 *   JWRN_EXTRANEOUS_DATA  padding bytes before a marker (common in files
 *                         from cameras and editors; the data resyncs)
 *   JWRN_JFIF_MAJOR       an unknown JFIF version number in APP0
 *   JWRN_ADOBE_XFORM      an unknown Adobe colour-transform code (the
 *                         colour space is then taken from the components)
 *   JWRN_NOT_SEQUENTIAL   out-of-spec (ignored) progression fields in a
 *                         baseline SOS
 *   JWRN_BOGUS_ICC        a damaged ICC profile marker (we ignore ICC) */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return; /* trace messages */
    switch (cinfo->err->msg_code) {
    case JWRN_EXTRANEOUS_DATA:
    case JWRN_JFIF_MAJOR:
    case JWRN_ADOBE_XFORM:
    case JWRN_NOT_SEQUENTIAL:
    case JWRN_BOGUS_ICC:
        cinfo->err->num_warnings++;
        return;
    default:
        jpeg_on_error(cinfo);
    }
}

static void jpeg_on_output(j_common_ptr cinfo) { (void)cinfo; }

static void jpeg_on_progress(j_common_ptr cinfo) {
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (cinfo->is_decompressor && d->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_err *e = (jpeg_err *)cinfo->err;
        snprintf(e->msg, sizeof e->msg, "more than %d progressive scans", JPEG_MAX_SCANS);
        longjmp(e->jb, 1);
    }
}

typedef struct {
    struct jpeg_decompress_struct cinfo;
    jpeg_err jerr;
    struct jpeg_progress_mgr progress;
    const char *path;
    oir_error *err;
} jpeg_rd;

static int jpeg_decode_inner(jpeg_rd *c, const uint8_t *buf, size_t len, rgb8 *o) {
    if (setjmp(c->jerr.jb)) {
        if (c->jerr.rc) return c->jerr.rc;
        return oir_fail(c->err, OIR_E_FORMAT, "%s: corrupt JPEG (%s)", c->path, c->jerr.msg);
    }
    jpeg_create_decompress(&c->cinfo);
    c->cinfo.progress = &c->progress;
    jpeg_mem_src(&c->cinfo, buf, (unsigned long)len);
    jpeg_read_header(&c->cinfo, TRUE);
    long long iw = (long long)c->cinfo.image_width, ih = (long long)c->cinfo.image_height;
    int rc = image_check_size(c->path, iw, ih, c->err);
    if (rc) return rc;
    /* Huffman coding spends at least one bit on every 8x8 block of the
     * full-resolution component (its DC difference, in the first scan that
     * codes it): a file of len bytes holds at most 512 * len pixels. A
     * header declaring more cannot be a whole image (libjpeg would zero a
     * whole-image buffer, then fill it with grey): refused before any pixel
     * memory. Arithmetic coding can compress further and is exempt. */
    if (!c->cinfo.arith_code && iw * ih > (long long)JPEG_MAX_PIXELS_PER_BYTE * (long long)len)
        return oir_fail(c->err, OIR_E_FORMAT,
                        "%s: corrupt JPEG (declares %lldx%lld pixels, more than its %zu bytes can "
                        "code: at most %d pixels a byte; truncated or damaged)",
                        c->path, iw, ih, len, JPEG_MAX_PIXELS_PER_BYTE);
    switch (c->cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB:
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        return oir_fail(c->err, OIR_E_UNSUPPORTED,
                        "%s: CMYK JPEG is not supported; convert it to RGB first", c->path);
    default:
        return oir_fail(c->err, OIR_E_UNSUPPORTED, "%s: JPEG colour space %d is not supported",
                        c->path, (int)c->cinfo.jpeg_color_space);
    }
    /* Defaults otherwise (ISLOW DCT, fancy upsampling), as Pillow decodes. */
    c->cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&c->cinfo); /* multi-scan files: reads every scan here */
    if (c->cinfo.progressive_mode && c->cinfo.coef_bits)
        for (int ci = 0; ci < c->cinfo.num_components; ci++)
            if (c->cinfo.coef_bits[ci][0] < 0) /* no scan ever coded its DC */
                return oir_fail(c->err, OIR_E_FORMAT,
                                "%s: corrupt JPEG (component %d has no scans: truncated)", c->path,
                                ci);
    int w = (int)c->cinfo.output_width, h = (int)c->cinfo.output_height;
    if (c->cinfo.output_components != 3 || w != (int)c->cinfo.image_width ||
        h != (int)c->cinfo.image_height)
        return oir_fail(c->err, OIR_E_INTERNAL, "%s: JPEG decoder gave %d components %dx%d",
                        c->path, c->cinfo.output_components, w, h);
    o->px = malloc((size_t)w * h * 3);
    if (!o->px)
        return oir_fail(c->err, OIR_E_NOMEM, "%s: cannot allocate %dx%d pixels", c->path, w, h);
    while (c->cinfo.output_scanline < c->cinfo.output_height) {
        JSAMPROW row = o->px + (size_t)c->cinfo.output_scanline * w * 3;
        if (jpeg_read_scanlines(&c->cinfo, &row, 1) != 1) /* never for a memory source */
            return oir_fail(c->err, OIR_E_FORMAT, "%s: corrupt JPEG (no data at row %u)",
                            c->path, (unsigned)c->cinfo.output_scanline);
    }
    jpeg_finish_decompress(&c->cinfo);
    o->width = w;
    o->height = h;
    return OIR_OK;
}

static int decode_jpeg(const char *path, const uint8_t *buf, size_t len, rgb8 *o,
                       oir_error *err) {
    jpeg_rd *c = calloc(1, sizeof *c);
    if (!c) return oir_fail(err, OIR_E_NOMEM, "%s: cannot create JPEG reader", path);
    c->path = path;
    c->err = err;
    c->cinfo.err = jpeg_std_error(&c->jerr.pub);
    c->jerr.pub.error_exit = jpeg_on_error;
    c->jerr.pub.emit_message = jpeg_on_message;
    c->jerr.pub.output_message = jpeg_on_output;
    c->progress.progress_monitor = jpeg_on_progress;
    int rc = jpeg_decode_inner(c, buf, len, o);
    jpeg_destroy_decompress(&c->cinfo); /* safe after a failed create too */
    free(c);
    if (rc) {
        free(o->px);
        memset(o, 0, sizeof *o);
    }
    return rc;
}

/* ---------------------------------------------------------------- load */

static int decode_file(const char *path, rgb8 *o, oir_error *err) {
    memset(o, 0, sizeof *o);
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = read_file(path, &buf, &len, err);
    if (rc) return rc;
    const char *other;
    switch (sniff(buf, len, &other)) {
    case FMT_PNG: rc = decode_png(path, buf, len, o, err); break;
    case FMT_JPEG: rc = decode_jpeg(path, buf, len, o, err); break;
    default:
        if (other)
            rc = oir_fail(err, OIR_E_UNSUPPORTED,
                          "%s: %s images are not supported, expected PNG or JPEG", path, other);
        else
            rc = oir_fail(err, OIR_E_FORMAT,
                          "%s: not a PNG or JPEG image (unknown signature %02x %02x %02x %02x)",
                          path, buf[0], len > 1 ? buf[1] : 0, len > 2 ? buf[2] : 0,
                          len > 3 ? buf[3] : 0);
    }
    free(buf);
    return rc;
}

int image_load(image *out, const char *path, oir_error *err) {
    memset(out, 0, sizeof *out);
    rgb8 px;
    int rc = decode_file(path, &px, err);
    if (rc) return rc;
    rc = image_alloc(out, px.width, px.height, 3, err);
    if (rc == OIR_OK) {
        float lut[256];
        for (int k = 0; k < 256; k++) lut[k] = (float)k / 255.0f;
        size_t n = (size_t)px.width * px.height * 3;
        for (size_t i = 0; i < n; i++) out->data[i] = lut[px.px[i]];
    } else {
        oir_error_prefix(err, "%s", path);
    }
    free(px.px);
    return rc;
}

/* ---------------------------------------------------------------- write */

typedef struct {
    jmp_buf jb;
    char msg[200];
} png_wr;

static void png_wr_error(png_structp png, png_const_charp msg) {
    png_wr *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "unknown error");
    longjmp(c->jb, 1);
}

typedef struct {
    png_wr ctx;
    png_structp png;
    png_infop info;
    outfile out;
    uint8_t *px;
    png_bytep *rows;
} png_writer;

static int png_write_inner(png_writer *w, const image *img, const char *path, oir_error *err) {
    if (setjmp(w->ctx.jb))
        return oir_fail(err, OIR_E_IO, "%s: cannot write PNG (%s)", path, w->ctx.msg);
    png_init_io(w->png, w->out.fp);
    png_set_IHDR(w->png, w->info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 img->channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    /* marks the file as oir's: io/outputs.h replaces only files it wrote */
    png_text text;
    memset(&text, 0, sizeof text);
    text.compression = PNG_TEXT_COMPRESSION_NONE;
    text.key = (png_charp) "Software";
    text.text = (png_charp) "oir";
    png_set_text(w->png, w->info, &text, 1);
    png_write_info(w->png, w->info);
    png_write_image(w->png, w->rows);
    png_write_end(w->png, NULL);
    return OIR_OK;
}

int image_save_png(const image *img, const char *path, oir_error *err) {
    if (!img->data || (img->channels != 1 && img->channels != 3))
        return oir_fail(err, OIR_E_ARG, "%s: can write 1- or 3-channel images, got %d channels",
                        path, img->channels);
    int rc = image_check_size(path, img->width, img->height, err);
    if (rc) return rc;

    png_writer w;
    memset(&w, 0, sizeof w);
    size_t n = (size_t)img->width * img->height * img->channels;
    size_t stride = (size_t)img->width * img->channels;
    w.px = malloc(n);
    w.rows = malloc((size_t)img->height * sizeof(png_bytep));
    if (!w.px || !w.rows) {
        rc = oir_fail(err, OIR_E_NOMEM, "%s: cannot allocate %zu bytes", path, n);
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) w.px[i] = to_u8_round(img->data[i]);
    for (int y = 0; y < img->height; y++) w.rows[y] = w.px + (size_t)y * stride;

    if ((rc = outfile_open(&w.out, path, err))) goto cleanup;
    w.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w.ctx, png_wr_error, png_on_warning);
    if (w.png) w.info = png_create_info_struct(w.png);
    if (!w.png || !w.info) {
        rc = oir_fail(err, OIR_E_NOMEM, "%s: cannot create PNG writer", path);
        goto cleanup;
    }
    if ((rc = png_write_inner(&w, img, path, err))) goto cleanup;
    rc = outfile_commit(&w.out, err);
cleanup:
    if (w.png) png_destroy_write_struct(&w.png, w.info ? &w.info : NULL);
    outfile_abort(&w.out); /* no-op after a commit */
    free(w.px);
    free(w.rows);
    return rc;
}
