/* Scaled-dot-product attention, memory-efficient (flash-attention style).
 *
 * Work is split into tasks (batch, head, block of qb queries); one thread
 * runs a task from start to end, so the bits of the result do not depend on
 * the thread count. Inside a task everything is kept transposed, with the
 * queries along the SIMD lanes:
 *   Qt (d, qb)  = (q block * scale * log2 e)^T         (packed once per task)
 *   Ot (d, qb)  = 0;  m (qb) = -inf;  l (qb) = 0
 *   for each tile of kb keys [k0, k0+nk):
 *     St (nk, qb) = K[k0:k0+nk] @ Qt        (K rows read in place, broadcast)
 *     hidden keys (key_mask, causal) -> -inf
 *     online softmax per query (column): m' = max(m, max_j St[j]);
 *       Pt = 2^(St - m');  l = l*2^(m - m') + sum_j Pt[j];  Ot *= 2^(m - m')
 *       (scores are in base 2 thanks to the log2 e in Qt: 2^x is cheaper
 *       than e^x and the result is the same softmax)
 *     Ot += V[k0:k0+nk]^T @ Pt              (V rows read in place, broadcast)
 *   out = Ot^T / l   (0 where l == 0: a query that sees no key)
 * With queries on the lanes, the max, sum and rescale of the online softmax
 * are plain vertical vector operations, and K and V need no packing. Memory
 * is the per-thread workspace above (qb*(2d + kb + 2) floats with qb = kb =
 * 128: 105 KB per thread for d = 40), never a (Tq x Tk) matrix. The products are our own register-tiled
 * loops rather than BLAS: BLAS may not be called inside our parallel regions
 * (threads.h), and with d = 40 the tiles are too thin for sgemm anyway. */
#include <math.h>
#include <string.h>

#include "core/ops.h"
#include "core/ops_simd.h"
#include "core/pool.h"

#ifndef ATT_AQ
#define ATT_AQ 128 /* queries per task (a multiple of VL) */
#endif
#ifndef ATT_AK
#define ATT_AK 128 /* keys per tile */
#endif
#define ATT_SMALL_KV (256 << 10) /* bytes of one head's K+V rows */
#if VL >= 16
#define QV 4 /* query vectors per micro-tile */
#define KR 4 /* key rows per Q.K micro-tile */
#define CR 4 /* head dims per P.V micro-tile */
#else
#define QV 2
#define KR 4
#define CR 4
#endif

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

typedef struct {
    int qb, kb;                  /* queries per task (multiple of VL), keys per tile */
    size_t qt, s, o, m, l;       /* float offsets into one thread's workspace */
    size_t per_thread;           /* floats */
} att_plan;

static att_plan att_make_plan(int Tq, int Tk, int d) {
    att_plan p;
    p.qb = (int)round_up((size_t)(Tq < ATT_AQ ? Tq : ATT_AQ), VL);
    p.kb = Tk < ATT_AK ? Tk : ATT_AK;
    size_t off = 0;
#define ATT_TAKE(field, n) (p.field = off, off += round_up((n), 16))
    ATT_TAKE(qt, (size_t)d * p.qb);
    ATT_TAKE(s, (size_t)p.kb * p.qb);
    ATT_TAKE(o, (size_t)d * p.qb);
    ATT_TAKE(m, (size_t)p.qb);
    ATT_TAKE(l, (size_t)p.qb);
#undef ATT_TAKE
    p.per_thread = off;
    return p;
}

static int max_threads(void) { return pool_threads(); }

size_t op_attention_scratch(int Tq, int Tk, int heads, int d) {
    if (Tq <= 0 || Tk <= 0 || d <= 0) return 0;
    return att_make_plan(Tq, Tk, d).per_thread * (size_t)max_threads();
}

/* St[r][lanes] (nr key rows, nv query vectors) = sum_c K[r][c] * Qt[c][lanes]. */
static inline __attribute__((always_inline)) void qk_tile(float *St, int ld, const float *K,
                                                          size_t ldk, const float *Qt, int d,
                                                          int nr, int nv) {
    vf acc[KR][QV];
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) acc[r][v] = vset1(0.0f);
    for (int c = 0; c < d; c++) {
        vf qv[QV];
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) qv[v] = vload(Qt + (size_t)c * ld + v * VL);
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            vf kb = vset1(K[r * ldk + c]);
#pragma GCC unroll 8
            for (int v = 0; v < nv; v++) acc[r][v] = vfma(kb, qv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) vstore(St + (size_t)r * ld + v * VL, acc[r][v]);
}

#define QK_NV_CASES(NR_)                                                          \
    switch (nv) {                                                                 \
    case 1: qk_tile(st, ld, kr, ldk, qt, d, NR_, 1); break;                       \
    case 2: qk_tile(st, ld, kr, ldk, qt, d, NR_, 2); break;                       \
    case 3: qk_tile(st, ld, kr, ldk, qt, d, NR_, QV < 3 ? QV : 3); break;       \
    default: qk_tile(st, ld, kr, ldk, qt, d, NR_, QV); break;                     \
    }

/* St (nk, nqv*VL) = K (nk rows, stride ldk) @ Qt (d, nqv*VL); ld = row stride of St, Qt. */
static void qk_block(float *St, int ld, const float *K, size_t ldk, const float *Qt, int d,
                     int nk, int nqv) {
    for (int v0 = 0; v0 < nqv; v0 += QV) {
        int nv = nqv - v0 < QV ? nqv - v0 : QV;
        const float *qt = Qt + v0 * VL;
        int j = 0;
        for (; j + KR <= nk; j += KR) {
            float *st = St + (size_t)j * ld + v0 * VL;
            const float *kr = K + (size_t)j * ldk;
            QK_NV_CASES(KR)
        }
        for (; j < nk; j++) {
            float *st = St + (size_t)j * ld + v0 * VL;
            const float *kr = K + (size_t)j * ldk;
            QK_NV_CASES(1)
        }
    }
}

/* Ot[r][lanes] (nr dims, nv query vectors) += sum_{j<nk} V[j][r] * Pt[j][lanes]. */
static inline __attribute__((always_inline)) void pv_tile(float *Ot, int ld, const float *V,
                                                          size_t ldv, const float *Pt, int nk,
                                                          int nr, int nv) {
    /* The tile's sum starts from 0 and is added to Ot at the end: blocked
     * summation keeps the error of a 4096-key sum near kb + Tk/kb roundings
     * instead of Tk. */
    vf acc[CR][QV];
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) acc[r][v] = vset1(0.0f);
    for (int j = 0; j < nk; j++) {
        vf pv[QV];
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) pv[v] = vload(Pt + (size_t)j * ld + v * VL);
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            vf vb = vset1(V[(size_t)j * ldv + r]);
#pragma GCC unroll 8
            for (int v = 0; v < nv; v++) acc[r][v] = vfma(vb, pv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) {
            float *o = Ot + (size_t)r * ld + v * VL;
            vstore(o, vload(o) + acc[r][v]);
        }
}

#define PV_NV_CASES(NR_)                                                        \
    switch (nv) {                                                               \
    case 1: pv_tile(ot, ld, vc, ldv, pt, nk, NR_, 1); break;                    \
    case 2: pv_tile(ot, ld, vc, ldv, pt, nk, NR_, 2); break;                    \
    case 3: pv_tile(ot, ld, vc, ldv, pt, nk, NR_, QV < 3 ? QV : 3); break;      \
    default: pv_tile(ot, ld, vc, ldv, pt, nk, NR_, QV); break;                  \
    }

/* Ot (d, nqv*VL) += V (nk rows, stride ldv, d columns)^T @ Pt (nk, nqv*VL). */
static void pv_block(float *Ot, int ld, const float *V, size_t ldv, const float *Pt, int d,
                     int nk, int nqv) {
    for (int v0 = 0; v0 < nqv; v0 += QV) {
        int nv = nqv - v0 < QV ? nqv - v0 : QV;
        const float *pt = Pt + v0 * VL;
        int c = 0;
        for (; c + CR <= d; c += CR) {
            float *ot = Ot + (size_t)c * ld + v0 * VL;
            const float *vc = V + c;
            PV_NV_CASES(CR)
        }
        for (; c < d; c++) {
            float *ot = Ot + (size_t)c * ld + v0 * VL;
            const float *vc = V + c;
            PV_NV_CASES(1)
        }
    }
}

/* Online-softmax update for one key tile: St (nk, nqv*VL) becomes Pt; m, l
 * and Ot (d rows) are updated per query lane. */
static void softmax_update(float *St, int ld, int nk, int nqv, float *m, float *l, float *Ot,
                           int d) {
    const vf neg_inf = vset1(-INFINITY);
    for (int v = 0; v < nqv; v++) {
        float *col = St + v * VL;
        vf vm = neg_inf;
        for (int j = 0; j < nk; j++) vm = vmax(vm, vload(col + (size_t)j * ld));
        vf mold = vload(m + v * VL);
        vf mnew = vmax(mold, vm);
        /* a lane that has seen no visible key keeps m = -inf; subtracting 0
         * instead of -inf makes its P and alpha exactly 0 (no inf - inf). */
        vf msafe = (vf)((vi)mnew & ~(mnew == neg_inf));
        vf alpha = vexp2(mold - msafe);
        vf vs = vset1(0.0f);
        for (int j = 0; j < nk; j++) {
            vf p = vexp2(vload(col + (size_t)j * ld) - msafe);
            vstore(col + (size_t)j * ld, p);
            vs += p;
        }
        vstore(l + v * VL, vfma(vload(l + v * VL), alpha, vs));
        vstore(m + v * VL, mnew);
        for (int c = 0; c < d; c++) {
            float *o = Ot + (size_t)c * ld + v * VL;
            vstore(o, vload(o) * alpha);
        }
    }
}

typedef struct {
    float *out;
    const float *q, *k, *v;
    int Tq, Tk, heads, d;
    float scale;
    const uint8_t *key_mask;
    int causal;
} att_args;

static void att_task(const att_args *a, const att_plan *p, float *ws, int b, int h, int q0) {
    const int d = a->d, ld = p->qb;
    const size_t hd = (size_t)a->heads * d;
    const int nq = a->Tq - q0 < p->qb ? a->Tq - q0 : p->qb;
    const int nqv = (nq + VL - 1) / VL, nqr = nqv * VL;
    float *Qt = ws + p->qt, *St = ws + p->s, *Ot = ws + p->o, *m = ws + p->m, *l = ws + p->l;

    /* Qt (d, nqr) = (q[b, q0:q0+nq, h] * scale * log2(e))^T, zero lanes past
     * nq: scores come out in base 2, so the softmax uses 2^x (cheaper than
     * e^x: no second range-reduction constant) */
    const float qscale = a->scale * 1.44269504088896341f;
    for (int c = 0; c < d; c++)
        for (int i = nq; i < nqr; i++) Qt[(size_t)c * ld + i] = 0.0f;
    for (int i = 0; i < nq; i++) {
        const float *src = a->q + ((size_t)b * a->Tq + q0 + i) * hd + (size_t)h * d;
        for (int c = 0; c < d; c++) Qt[(size_t)c * ld + i] = src[c] * qscale;
    }
    for (int c = 0; c < d; c++) memset(Ot + (size_t)c * ld, 0, (size_t)nqr * sizeof(float));
    for (int i = 0; i < nqr; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
    }

    const uint8_t *km = a->key_mask ? a->key_mask + (size_t)b * a->Tk : NULL;
    int kend = a->causal ? (q0 + nq < a->Tk ? q0 + nq : a->Tk) : a->Tk;
    for (int k0 = 0; k0 < kend; k0 += p->kb) {
        int nk = kend - k0 < p->kb ? kend - k0 : p->kb;
        size_t row0 = ((size_t)b * a->Tk + k0) * hd + (size_t)h * d;
        const float *K = a->k + row0, *V = a->v + row0; /* (nk, d), row stride hd */

        qk_block(St, ld, K, hd, Qt, d, nk, nqv);

        /* hide masked keys, and (causal) keys after the query */
        if (km || (a->causal && k0 + nk - 1 > q0)) {
            for (int j = 0; j < nk; j++) {
                float *row = St + (size_t)j * ld;
                int hide = nqr; /* lanes [0, hide) are hidden from key k0+j */
                if (!km || km[k0 + j]) {
                    hide = a->causal ? k0 + j - q0 : 0; /* queries q0+i < k0+j */
                    if (hide < 0) hide = 0;
                    if (hide > nqr) hide = nqr;
                }
                for (int i = 0; i < hide; i++) row[i] = -INFINITY;
            }
        }

        softmax_update(St, ld, nk, nqv, m, l, Ot, d);
        pv_block(Ot, ld, V, hd, St, d, nk, nqv);
    }

    /* Ot /= l per lane (0 where no key was visible), then out = Ot^T */
    for (int v = 0; v < nqv; v++) {
        vf lv = vload(l + v * VL);
        vf inv = (vf)((vi)(1.0f / lv) & (lv > 0.0f));
        for (int c = 0; c < d; c++) {
            float *o = Ot + (size_t)c * ld + v * VL;
            vstore(o, vload(o) * inv);
        }
    }
    for (int i = 0; i < nq; i++) {
        float *dst = a->out + ((size_t)b * a->Tq + q0 + i) * hd + (size_t)h * d;
        for (int c = 0; c < d; c++) dst[c] = Ot[(size_t)c * ld + i];
    }
}

typedef struct {
    const att_args *a;
    const att_plan *p;
    float *scratch;
    int heads, nqb, head_inner;
} att_job;

static void att_tasks(void *ctx, long t0, long t1, int worker) {
    const att_job *j = ctx;
    float *ws = j->scratch + j->p->per_thread * (size_t)worker;
    int heads = j->heads, nqb = j->nqb;
    for (long t = t0; t < t1; t++) {
        int b, h, qi;
        if (j->head_inner) { /* (b, qi, h): neighbouring tasks share q and out rows */
            h = (int)(t % heads);
            qi = (int)(t / heads % nqb);
            b = (int)(t / heads / nqb);
        } else { /* (b, h, qi): neighbouring tasks share this head's K and V */
            qi = (int)(t % nqb);
            h = (int)(t / nqb % heads);
            b = (int)(t / nqb / heads);
        }
        att_task(j->a, j->p, ws, b, h, qi * j->p->qb);
    }
}

void op_attention(float *out, const float *q, const float *k, const float *v, int B, int Tq,
                  int Tk, int heads, int d, float scale, const uint8_t *key_mask, int causal,
                  float *scratch) {
    /* q (B, Tq, heads*d), k/v (B, Tk, heads*d) -> out (B, Tq, heads*d) */
    if (B <= 0 || Tq <= 0 || heads <= 0 || d <= 0) return;
    if (Tk <= 0) {
        memset(out, 0, (size_t)B * Tq * heads * d * sizeof(float));
        return;
    }
    att_plan p = att_make_plan(Tq, Tk, d);
    att_args a = {out, q, k, v, Tq, Tk, heads, d, scale, key_mask, causal};
    int nqb = (Tq + p.qb - 1) / p.qb;
    long ntasks = (long)B * heads * nqb;
    /* Task order: when one head's K and V are small (cross-attention over 77
     * text tokens), run the heads of a query block back to back, so the q
     * and out rows they share stay in cache; otherwise keep a head's K and V
     * hot across its query blocks. The order never changes a result. */
    att_job j = {&a, &p, scratch, heads, nqb, (size_t)Tk * d * 2 * sizeof(float) <= ATT_SMALL_KV};
    pool_for(ntasks, 1, att_tasks, &j);
}
