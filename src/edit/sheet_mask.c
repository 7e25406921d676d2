/* An inferred mask drawn over the input, as a band on top of a contact sheet
 * (sheet.h sheet_add_mask). */
#include <stdio.h>
#include <string.h>

#include "edit/sheet.h"

int sheet_add_mask(image *out, const image *sheet, const image *input, const unsigned char *mask,
                   const char *caption, oir_error *err) {
    static const float black[3] = {0, 0, 0}, red[3] = {0.9f, 0.1f, 0.1f};
    memset(out, 0, sizeof *out);
    if (!sheet || !input || !mask || input->channels != 3 || sheet->channels != 3)
        return oir_fail(err, OIR_E_ARG, "sheet: missing mask panel input");
    /* the input at the sheet's thumbnail size: the longer side 96..128 */
    int w = input->width, h = input->height, src = w > h ? w : h;
    int thumb = src < 96 ? 96 : (src > 128 ? 128 : src);
    int tw = w >= h ? thumb : (int)((2LL * thumb * w + h) / (2LL * h)), th = h >= w ? thumb : (int)((2LL * thumb * h + w) / (2LL * w));
    if (tw < 1) tw = 1;
    if (th < 1) th = 1;
    int pad = 6, band = th + 2 * pad;
    int width = sheet->width > tw + 2 * pad + 200 ? sheet->width : tw + 2 * pad + 200;
    int rc = image_alloc(out, width, sheet->height + band, 3, err);
    if (rc) return rc;
    for (size_t i = 0; i < (size_t)out->width * out->height * 3; i++) out->data[i] = 1.0f;
    /* the overlay: nearest samples of the input and the mask; inside, the
     * input tinted red; the mask's edge solid red */
    for (int y = 0; y < th; y++)
        for (int x = 0; x < tw; x++) {
            int sy = (int)((long)y * h / th), sx = (int)((long)x * w / tw);
            const float *px = input->data + ((size_t)sy * w + sx) * 3;
            int in = mask[(size_t)sy * w + sx] != 0, edge = 0;
            if (in)
                for (int d = 0; d < 4 && !edge; d++) {
                    int yy = y + (d == 0) - (d == 1), xx = x + (d == 2) - (d == 3);
                    if (yy < 0 || xx < 0 || yy >= th || xx >= tw) continue;
                    int ny = (int)((long)yy * h / th), nx = (int)((long)xx * w / tw);
                    edge = !mask[(size_t)ny * w + nx];
                }
            float *o = out->data + ((size_t)(pad + y) * width + pad + x) * 3;
            for (int c = 0; c < 3; c++) o[c] = edge ? red[c] : (in ? 0.5f * px[c] + 0.5f * red[c] : px[c]);
        }
    /* the caption beside it, one line per '\n' */
    char buf[512];
    snprintf(buf, sizeof buf, "%s", caption ? caption : "");
    int line = 0;
    for (char *s = buf, *nl; s; s = nl ? nl + 1 : NULL, line++) {
        nl = strchr(s, '\n');
        if (nl) *nl = '\0';
        sheet_draw_text(out, tw + 3 * pad, pad + 2 + line * 14, 2, line ? black : red, s);
    }
    /* the sheet below the band */
    for (int y = 0; y < sheet->height; y++)
        memcpy(out->data + ((size_t)(band + y) * width) * 3, sheet->data + (size_t)y * sheet->width * 3,
               (size_t)sheet->width * 3 * sizeof(float));
    return OIR_OK;
}
