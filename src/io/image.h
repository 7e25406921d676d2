/* Images and masks: PNG/JPEG reading, PNG writing, Pillow-exact resizing,
 * the authors' center-crop loader, and masks from files or boxes.
 *
 * Layout. An `image` is float32, interleaved, row-major (H, W, C):
 *     data[((size_t)y * width + x) * channels + c],  values in [0, 1].
 * Colour images have 3 channels (R, G, B). Masks have 1 channel whose values
 * are exactly 0 (background) or 1 (object). Decoded pixels are exact
 * float32(k / 255) for 8-bit k, and every function that resamples with
 * Pillow's filters works on those 8-bit values, as Pillow does.
 *
 * Reading (image_load) follows the authors' loader
 * `np.array(Image.open(p))[:, :, :3]`: the format is found from the file's
 * magic bytes, never its extension; alpha is dropped, NOT composited; gray is
 * replicated into R, G, B; palettes are expanded; 16-bit PNG samples keep
 * their high byte (what Pillow does); gAMA/iCCP and EXIF orientation are
 * ignored (Pillow ignores them too). CMYK JPEGs, GIF, BMP, WebP, TIFF are
 * refused with OIR_E_UNSUPPORTED. Sizes over IMAGE_MAX_SIDE per side or
 * IMAGE_MAX_PIXELS (64 Mpixels) in all are refused from the header, before
 * any pixel memory is allocated (libpng's user limits are set to the same
 * sides). So is a header that declares more pixels than the file could code
 * (a Huffman JPEG spends at least one bit per 8x8 block: at most 512 pixels
 * a byte; deflate expands PNG rows at most ~1032:1): a 786-byte JPEG
 * declaring 64 Mpixels no longer makes libjpeg zero a 1 GB buffer.
 * A truncated or corrupt file is an error (OIR_E_FORMAT) whose message names
 * the file: "img.png: corrupt PNG (IDAT: invalid distance too far back)".
 * JPEG damage that libjpeg only warns about (premature end of a scan or of
 * the file, bad Huffman or arithmetic codes, a lost restart marker, an
 * inconsistent progression, a progressive component with no scans) is an
 * error too, where libjpeg (and Pillow) would fill the image with grey and
 * succeed; only warnings that lose no pixel data are ignored: extraneous
 * bytes before a marker, an unknown JFIF version or Adobe transform code,
 * ignored SOS fields of a baseline file, a damaged ICC marker. (JPEG has no
 * checksum: random bytes in a scan that still decode as valid codes give
 * noise, as in Pillow, with at most an "extraneous bytes" warning.) Progressive
 * JPEGs with more than 500 scans are refused (decoding time bomb). Files are
 * opened through io/file.h: a FIFO or device is refused, never read.
 *
 * Geometry (matching prompt-to-prompt's load_512, used by the OIR authors):
 *   image_center_crop      centered square of side min(H, W); offset
 *                          (W - H) / 2 columns or (H - W) / 2 rows (floor).
 *   image_resize           Pillow 9.4 Image.resize(..., BICUBIC): separable
 *                          convolution, horizontal pass then vertical pass,
 *                          support scaled by the downscale factor, 22-bit
 *                          fixed-point coefficients, clamp + round to uint8
 *                          after each pass. Bit-exact with Pillow in tests.
 *   image_resize_nearest   Pillow Image.resize(..., NEAREST).
 *   image_center_crop_resize / image_load_square = load_512 with any size.
 *
 * Model tensors. image_to_tensor writes (1, C, H, W) in [-1, 1] as
 * `torch.from_numpy(u8).float() / 127.5 - 1`; image_from_tensor maps back
 * with `(x / 2 + 0.5).clamp(0, 1)`. Quantising to 8 bits is a separate step
 * (image_quantize): round half to even like diffusers' numpy_to_pil, or
 * truncate like prompt-to-prompt's latent2image `(x * 255).astype(uint8)`.
 * image_save_png rounds (half to even).
 *
 * Masks. mask_load: a pixel is object (1) when any of R, G, B is non-zero
 * after the reading rules above (alpha ignored; for 16-bit PNGs after
 * reduction to the high byte). Beware JPEG masks: compression noise makes
 * near-black pixels non-zero. mask_load_square crops like the image and
 * resizes with Pillow NEAREST. mask_from_box: "x0,y0,x1,y1" in pixels of the
 * image it applies to (the model-size image after crop/resize), x1 and y1
 * exclusive, clamped to the image; an empty, inverted or fully outside box is
 * an error. mask_resize_nearest shrinks a mask to a grid (latent 64x64, CLIP
 * patches 14x14) as torch's F.interpolate(mode="nearest") then "> 0.5" does.
 *
 * All functions are reentrant; no global state. Output images are
 * allocated by the callee and freed with image_free; on failure the output is
 * left zeroed (image_free on it is a no-op).
 */
#ifndef OIR_IO_IMAGE_H
#define OIR_IO_IMAGE_H

#include <stddef.h>

#include "core/error.h"

#define IMAGE_MAX_SIDE 16384
#define IMAGE_MAX_PIXELS (64LL * 1024 * 1024)

typedef struct {
    int width, height, channels;
    float *data; /* (H, W, C) interleaved, [0, 1]; owned (malloc) */
} image;

/* Allocates a zeroed width x height x channels image (channels 1..4). */
int image_alloc(image *img, int width, int height, int channels, oir_error *err);
/* Frees img->data and zeroes img; safe on a zeroed image. */
void image_free(image *img);
int image_copy(image *out, const image *in, oir_error *err);
/* OIR_E_UNSUPPORTED (or OIR_E_FORMAT for <= 0) when width x height is not a
 * size this module accepts; `what` (a file name) starts the message. */
int image_check_size(const char *what, long long width, long long height, oir_error *err);

/* Reads a PNG or JPEG as 3-channel RGB (see the reading rules above). */
int image_load(image *out, const char *path, oir_error *err);
/* Writes an 8-bit PNG: RGB for 3 channels, gray for 1 channel. Values are
 * clamped to [0, 1] and rounded half to even (NaN writes 0). Written
 * atomically through io/outfile.h (a fresh exclusive temp file renamed over
 * path). */
int image_save_png(const image *img, const char *path, oir_error *err);

/* In place: x := q / 255 with q = round_half_even(clamp(x, 0, 1) * 255), or
 * q = floor(...) when truncate is non-zero. NaN becomes 0. */
void image_quantize(image *img, int truncate);

/* Pillow BICUBIC resize to width x height (any channel count). Inputs that
 * are not multiples of 1/255 are first rounded to 8 bits. */
int image_resize(image *out, const image *in, int width, int height, oir_error *err);
/* Pillow NEAREST resize to width x height (no rounding of values). */
int image_resize_nearest(image *out, const image *in, int width, int height, oir_error *err);
/* Centered square crop of side min(H, W), as load_512. */
int image_center_crop(image *out, const image *in, oir_error *err);
/* Crop as load_512, then Pillow BICUBIC resize to size x size (a copy when
 * the crop is already that size, as Pillow returns a copy). */
int image_center_crop_resize(image *out, const image *in, int size, oir_error *err);
/* image_load + image_center_crop_resize: load_512 for size 512. */
int image_load_square(image *out, const char *path, int size, oir_error *err);

/* dst (1, C, H, W) = u8 / 127.5 - 1 where u8 = img * 255 (exact for decoded
 * 8-bit images). dst holds channels * height * width floats. */
void image_to_tensor(const image *img, float *dst);
/* out (H, W, C) = clamp(src / 2 + 0.5, 0, 1) from src (1, C, H, W); NaN -> 0. */
int image_from_tensor(image *out, const float *src, int channels, int width, int height,
                      oir_error *err);

/* Mask (1 channel, 0/1) from a PNG or JPEG: object where any of R, G, B != 0. */
int mask_load(image *out, const char *path, oir_error *err);
/* mask_load, crop as load_512, Pillow NEAREST resize to size x size. */
int mask_load_square(image *out, const char *path, int size, oir_error *err);
/* Parses "x0,y0,x1,y1" (integers, optional spaces) into box. */
int mask_parse_box(const char *spec, int box[4], oir_error *err);
/* width x height mask, 1 inside [x0, x1) x [y0, y1) after clamping to the
 * image; error (OIR_E_ARG) when the box is empty, inverted or outside. */
int mask_from_box(image *out, int width, int height, const int box[4], oir_error *err);
/* Mask to a width x height grid: src = min(floor(dst * (float)in / out),
 * in - 1) per axis (torch nearest), then 1 where the value > 0.5. */
int mask_resize_nearest(image *out, const image *in, int width, int height, oir_error *err);
/* OIR_E_SHAPE unless mask and img have the same width and height; the
 * message names both files and both sizes. */
int mask_check_size(const image *mask, const char *mask_name, const image *img,
                    const char *image_name, oir_error *err);

#endif
