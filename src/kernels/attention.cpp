// The fused multi-head attention kernel (causal or bidirectional). Per (batch,
// head) and block of kRows query rows: the scores of the block over the keys it
// sees (a register-blocked product with the keys transposed), the map's block
// kernel (attention_map.h) on the block's rows, then the weighted sum of values;
// causal, nothing right of the diagonal block is computed.
// Backward runs the same blocks. Work is split over (batch, head) pairs, each
// summed in a fixed order, so results do not depend on the thread count.
#include "kernels/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/profile.h"
#include "kernels/fastmath.h"
#include "kernels/vec.h"

namespace attnlab {

void alibi_slopes(float* slopes, int H) {
    for (int h = 1; h <= H; h++) slopes[h - 1] = float(std::pow(2.0, -8.0 * h / H));
}

namespace {

constexpr int kRows = kAttnBlockRows;  // 8 accumulator registers per 16 columns

// The query rows i0 .. i0 + rows - 1 of one block and the keys they see: row r sees
// n0 + r dn keys (causal: j <= i, so n0 = i0 + 1, dn = 1; bidirectional: all T, dn = 0),
// all of them below jend; jv = jend rounded up to whole 16-lane chunks.
struct RowBlock {
    int rows, jend, jv, n0, dn;
    RowBlock(int i0, int T, bool causal)
        : rows(std::min(kRows, T - i0)),
          jend(causal ? i0 + rows : T),
          jv(round_up(jend, kLanes)),
          n0(causal ? i0 + 1 : T),
          dn(causal ? 1 : 0) {}
};

// Scratch of one thread, padded so every vector access stays inside: Tp = T and
// hsp = hs rounded up to kLanes.
struct Scratch {
    int Tp, hsp;
    float* kt;     // (hs, Tp)  keys (forward) or values (backward), transposed
    float* vp;     // (Tp, hsp) values (forward) or keys (backward), rows padded (hs % kLanes != 0)
    float* qp;     // (Tp, hsp) queries, rows padded (backward, hs % kLanes != 0)
    float* dk;     // (Tp, hsp) dL/dk accumulators (backward)
    float* dv;     // (Tp, hsp) dL/dv accumulators (backward)
    float* tile;   // (kRows, Tp) scores (forward) or dL/dw, then dL/ds (backward) of one block
    float* wtile;  // (kRows, Tp) weights of one block
    float* stile;  // (kRows, Tp) scores of one block (backward, maps that need them)
    float* dop;    // (kRows, hsp) dL/dout rows of one block, padded (backward, hs % kLanes != 0)
    float* zero;   // (Tp) zeros: the coefficient row of a missing block row

    Scratch(float* base, int T, int hs) : Tp(round_up(T, kLanes)), hsp(round_up(hs, kLanes)) {
        float* p = base;
        auto take = [&p](size_t n) {
            float* r = p;
            p += round_up(int(n), kLanes);
            return r;
        };
        kt = take(size_t(hs) * Tp), vp = take(size_t(Tp) * hsp), qp = take(size_t(Tp) * hsp);
        dk = take(size_t(Tp) * hsp), dv = take(size_t(Tp) * hsp);
        tile = take(size_t(kRows) * Tp), wtile = take(size_t(kRows) * Tp),
        stile = take(size_t(kRows) * Tp);
        dop = take(size_t(kRows) * hsp), zero = take(size_t(Tp));
    }
    static size_t floats(int T, int hs) {
        const size_t Tp = size_t(round_up(T, kLanes)), hsp = size_t(round_up(hs, kLanes));
        return hs * Tp + 4 * Tp * hsp + 3 * kRows * Tp + kRows * hsp + Tp + 10 * kLanes;
    }
};

// dst[0..n) = src[0..n) in vector chunks (rows are short; a libc call per row is not).
void copy(float* dst, const float* src, int n) {
    int j = 0;
    for (; j + kLanes <= n; j += kLanes) store16(dst + j, load16(src + j));
    for (; j < n; j++) dst[j] = src[j];
}

// dst[0..n) = alpha * src[0..n).
void copy_scaled(float* dst, const float* src, int n, float alpha) {
    int j = 0;
    for (; j + kLanes <= n; j += kLanes) store16(dst + j, load16(src + j) * alpha);
    for (; j < n; j++) dst[j] = src[j] * alpha;
}

// o[0..n) (= or +=) the first n = min(n, kLanes) lanes of v.
void put_lanes(float* o, Vec16 v, int n, bool add) {
    if (n >= kLanes) return store16(o, add ? load16(o) + v : v);
    float lanes[kLanes];
    store16(lanes, v);
    for (int d = 0; d < n; d++) o[d] = add ? o[d] + lanes[d] : lanes[d];
}

// dst (hs, Tp): dst[d, j] = x_j[d] for j < T, 0 for T <= j < Tp; x_j = x + j * ld.
void pack_transposed(float* dst, int Tp, const float* x, int ld, int T, int hs) {
    for (int d = 0; d < hs; d++) {
        float* row = dst + size_t(d) * Tp;
        for (int j = 0; j < T; j++) row[j] = x[size_t(j) * ld + d];
        for (int j = T; j < Tp; j++) row[j] = 0.0f;
    }
}

// dst (T, hsp): row j = x_j[0..hs) followed by zeros.
void pack_rows(float* dst, int hsp, const float* x, int ld, int T, int hs) {
    for (int j = 0; j < T; j++) {
        float* row = dst + size_t(j) * hsp;
        copy(row, x + size_t(j) * ld, hs);
        for (int d = hs; d < hsp; d++) row[d] = 0.0f;
    }
}

// Rows x_j = p + j * ld, each with at least hsp readable floats (hs valid).
struct Rows {
    const float* p;
    size_t ld;
    const float* row(int j) const { return p + size_t(j) * ld; }
};

// The n rows x_j = x + j * ld as Rows: x itself when hs is a multiple of kLanes,
// else a zero-padded copy in buf (n x hsp).
Rows padded_rows(float* buf, int hsp, const float* x, int ld, int n, int hs) {
    if (hs == hsp) return {x, size_t(ld)};
    pack_rows(buf, hsp, x, ld, n, hs);
    return {buf, size_t(hsp)};
}

// tile[r, j] = alpha * a_r . xt[., j] for r < kRows, j < jv (a multiple of kLanes):
// a_r = a + r * lda, xt (hs, Tp) transposed. Rows past `rows` repeat row 0 (not stored).
void tile_products(float* tile, int Tp, const float* a, int lda, int rows, const float* xt, int hs,
                   int jv, float alpha) {
    const float* ar[kRows];
    for (int r = 0; r < kRows; r++) ar[r] = a + size_t(r < rows ? r : 0) * lda;
    for (int j0 = 0; j0 < jv; j0 += kLanes) {
        Vec16 acc[kRows] = {};
        for (int d = 0; d < hs; d++) {
            const Vec16 x = load16(xt + size_t(d) * Tp + j0);
            for (int r = 0; r < kRows; r++) acc[r] += x * ar[r][d];
        }
        for (int r = 0; r < rows; r++) store16(tile + size_t(r) * Tp + j0, acc[r] * alpha);
    }
}

// out_r[0..hs) (= or +=) alpha_r * sum_{j < jend} c_r[j] x_j for the block's rows:
// c_r = c + r * ldc, out_r = out + r * ldo.
void weighted_rows(float* out, int ldo, int rows, const float* c, int ldc, Rows x, int hsp, int hs,
                   int jend, const float* alpha, bool add) {
    const float* cr[kRows];
    for (int r = 0; r < kRows; r++) cr[r] = c + size_t(r < rows ? r : 0) * ldc;
    for (int d0 = 0; d0 < hsp; d0 += kLanes) {
        Vec16 acc[kRows] = {};
        for (int j = 0; j < jend; j++) {
            const Vec16 xj = load16(x.row(j) + d0);
            for (int r = 0; r < kRows; r++) acc[r] += xj * cr[r][j];
        }
        for (int r = 0; r < rows; r++)
            put_lanes(out + size_t(r) * ldo + d0, acc[r] * alpha[r], hs - d0, add);
    }
}

// acc_j += sum_r c_r[j] y_r for j < jend: acc (Tp, hsp), c_r = c + r * ldc for
// r < rows and the zero row after.
void accumulate_outer(float* acc, int hsp, int jend, const float* c, int ldc, int rows, Rows y,
                      const float* zero) {
    const float* cr[kRows];
    for (int r = 0; r < kRows; r++) cr[r] = r < rows ? c + size_t(r) * ldc : zero;
    for (int d0 = 0; d0 < hsp; d0 += kLanes) {
        Vec16 yr[kRows];
        for (int r = 0; r < kRows; r++) yr[r] = load16(y.row(r < rows ? r : 0) + d0);
        for (int j = 0; j < jend; j++) {
            float* a = acc + size_t(j) * hsp + d0;
            Vec16 v = load16(a);
            for (int r = 0; r < kRows; r++) v += yr[r] * cr[r][j];
            store16(a, v);
        }
    }
}

// x_j[0..hs) (= or +=) alpha acc_j for j < T: x_j = x + j * ld, acc (T, hsp).
void unpack_rows(float* x, int ld, const float* acc, int hsp, int T, int hs, float alpha,
                 bool add) {
    for (int j = 0; j < T; j++)
        for (int d0 = 0; d0 < hs; d0 += kLanes)
            put_lanes(x + size_t(j) * ld + d0, load16(acc + size_t(j) * hsp + d0) * alpha, hs - d0,
                      add);
}

}  // namespace

size_t attention_scratch_floats(AttentionShape sh) {
    return Scratch::floats(sh.T, sh.hs());
}

void attention_forward(float* out, float* scores, float* weights, float* scratch, const float* qkv,
                       AttnMap map, const float* alibi, AttentionShape sh) {
    const ProfileScope prof(KernelFamily::attention);
    const int B = sh.B, T = sh.T, C = sh.C, H = sh.H, hs = sh.hs(), ld = 3 * C;
    const float scale = 1.0f / std::sqrt(float(hs));
    const float log_T = std::log(float(T));
    const AttnMapInfo& mi = map.info();
    const size_t per_thread = attention_scratch_floats(sh);
#pragma omp parallel
    {
        Scratch sc(scratch + per_thread * size_t(omp_get_thread_num()), T, hs);
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * H; bh++) {
            const int b = bh / H, h = bh % H;
            const float* q = qkv + size_t(b) * T * ld + h * hs;
            pack_transposed(sc.kt, sc.Tp, q + C, ld, T, hs);                  // keys
            const Rows v = padded_rows(sc.vp, sc.hsp, q + 2 * C, ld, T, hs);  // values
            float* w_bh = weights + size_t(bh) * T * T;
            for (int i0 = 0; i0 < T; i0 += kRows) {
                const RowBlock blk(i0, T, sh.causal);
                const int rows = blk.rows, jend = blk.jend, jv = blk.jv;
                // s = q k^T / sqrt(hs) for the block's rows, columns j < jv
                tile_products(sc.tile, sc.Tp, q + size_t(i0) * ld, ld, rows, sc.kt, hs, jv, scale);
                if (alibi)  // s_ij -= m_h |i - j| (= m_h (i - j) on the causal keys j <= i)
                    for (int r = 0; r < rows; r++)
                        for (int j0 = 0; j0 < jv; j0 += kLanes) {
                            float* s = sc.tile + size_t(r) * sc.Tp + j0;
                            store16(s, load16(s) - alibi[h] * vabs(float(i0 + r) - lane_index(j0)));
                        }
                // w = map(s) row by row, as wtile times a factor per row; w_ij = 0 for j
                // outside A(i) (j < jv)
                float factor[kRows];
                if (rows == kRows)
                    mi.forward_block(sc.wtile, factor, sc.tile, sc.Tp, blk.n0, blk.dn, jv, log_T);
                else
                    for (int r = 0; r < rows; r++)
                        mi.forward_row(sc.wtile + size_t(r) * sc.Tp, factor + r,
                                       sc.tile + size_t(r) * sc.Tp, 0, blk.n0 + r * blk.dn, 0, jv,
                                       log_T);
                for (int r = 0; r < rows; r++) {
                    const int i = i0 + r;
                    // w_ij for j < jend, and the zeros up to jv that fit in the row
                    copy_scaled(w_bh + size_t(i) * T, sc.wtile + size_t(r) * sc.Tp, std::min(jv, T),
                                factor[r]);
                    if (scores)
                        copy(scores + (size_t(bh) * T + i) * T, sc.tile + size_t(r) * sc.Tp,
                             blk.n0 + r * blk.dn);
                }
                // out = w v
                weighted_rows(out + (size_t(b) * T + i0) * C + h * hs, C, rows, sc.wtile, sc.Tp, v,
                              sc.hsp, hs, jend, factor, false);
            }
        }
    }
}

void attention_backward(float* dqkv, float* scratch, const float* dout, const float* qkv,
                        const float* scores, const float* weights, AttnMap map, AttentionShape sh,
                        GradStore store) {
    const ProfileScope prof(KernelFamily::attention);
    const int B = sh.B, T = sh.T, C = sh.C, H = sh.H, hs = sh.hs(), ld = 3 * C;
    const float scale = 1.0f / std::sqrt(float(hs));
    const bool add = store == GradStore::add;
    const AttnMapInfo& mi = map.info();
    const size_t per_thread = attention_scratch_floats(sh);
#pragma omp parallel
    {
        Scratch sc(scratch + per_thread * size_t(omp_get_thread_num()), T, hs);
        std::fill(sc.zero, sc.zero + sc.Tp, 0.0f);
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * H; bh++) {
            const int b = bh / H, h = bh % H;
            const size_t row0 = size_t(b) * T * ld + size_t(h) * hs;
            const float* q = qkv + row0;
            const float* dout_bh = dout + size_t(b) * T * C + h * hs;
            const float* w_bh = weights + size_t(bh) * T * T;
            // the scores, for the maps whose backward needs them (the others read w as s)
            const float* s_bh = mi.needs_scores ? scores + size_t(bh) * T * T : nullptr;
            pack_transposed(sc.kt, sc.Tp, q + 2 * C, ld, T, hs);          // values, transposed
            const Rows k = padded_rows(sc.vp, sc.hsp, q + C, ld, T, hs);  // keys
            const Rows qr = padded_rows(sc.qp, sc.hsp, q, ld, T, hs);     // queries
            std::fill(sc.dk, sc.dk + size_t(T) * sc.hsp, 0.0f);
            std::fill(sc.dv, sc.dv + size_t(T) * sc.hsp, 0.0f);
            for (int i0 = 0; i0 < T; i0 += kRows) {
                const RowBlock blk(i0, T, sh.causal);
                const int rows = blk.rows, jend = blk.jend, jv = blk.jv;
                // the block's weights (and scores) into padded tiles: w_ij = 0 for j outside
                // A(i) (j < jv)
                for (int r = 0; r < rows; r++) {
                    float* w = sc.wtile + size_t(r) * sc.Tp;
                    const int n = std::min(jv, T);  // the row holds 0 right of the diagonal
                    copy(w, w_bh + size_t(i0 + r) * T, n);
                    for (int j = n; j < jv; j++) w[j] = 0.0f;
                    if (s_bh)  // entries right of the diagonal are stale but masked by the map
                        copy(sc.stile + size_t(r) * sc.Tp, s_bh + size_t(i0 + r) * T, n);
                }
                const Rows dop = padded_rows(sc.dop, sc.hsp, dout_bh + size_t(i0) * C, C, rows, hs);
                // forward: out = w v  =>  dw = dout v^T, dv += w^T dout
                tile_products(sc.tile, sc.Tp, dout_bh + size_t(i0) * C, C, rows, sc.kt, hs, jv,
                              1.0f);
                accumulate_outer(sc.dv, sc.hsp, jend, sc.wtile, sc.Tp, rows, dop, sc.zero);
                // dL/dw in the tile becomes dL/ds (0 for j > i)
                const float* s_tile = s_bh ? sc.stile : sc.wtile;
                if (rows == kRows)
                    mi.backward_block(sc.tile, sc.tile, sc.wtile, s_tile, sc.Tp, blk.n0, blk.dn,
                                      jv);
                else
                    for (int r = 0; r < rows; r++) {
                        const size_t o = size_t(r) * sc.Tp;
                        mi.backward_row(sc.tile + o, sc.tile + o, sc.wtile + o, s_tile + o, 0,
                                        blk.n0 + r * blk.dn, 0, jv);
                    }
                // forward: s = q k^T * scale  =>  dq = ds k * scale, dk += ds^T q * scale
                float scales[kRows];
                std::fill(scales, scales + kRows, scale);
                weighted_rows(dqkv + row0 + size_t(i0) * ld, ld, rows, sc.tile, sc.Tp, k, sc.hsp,
                              hs, jend, scales, add);
                accumulate_outer(sc.dk, sc.hsp, jend, sc.tile, sc.Tp, rows, {qr.row(i0), qr.ld},
                                 sc.zero);
            }
            unpack_rows(dqkv + row0 + C, ld, sc.dk, sc.hsp, T, hs, scale,
                        add);  // dk's scale applied once
            unpack_rows(dqkv + row0 + 2 * C, ld, sc.dv, sc.hsp, T, hs, 1.0f, add);
        }
    }
}

}  // namespace attnlab
