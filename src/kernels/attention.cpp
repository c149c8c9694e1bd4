// Attention maps (forward and backward rules from MODELS.md) and the fused
// multi-head causal attention kernel. Per (batch, head) and block of kRows query
// rows: the scores of the block over the causal prefix (a register-blocked
// product with the keys transposed), the map on the block's rows, then the
// weighted sum of values; nothing right of the diagonal block is computed.
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

const std::vector<AttnMapInfo>& all_attention_maps() {
    static const std::vector<AttnMapInfo> maps = {
        {AttnMap::softmax, "softmax", "exp(s_ij) / sum_l exp(s_il)", true,
         "dot-product attention (DPA)"},
        {AttnMap::expressive, "expressive", "exp(s_ij^2) / sum_l exp(s_il^2)", true,
         "expressive attention (EA), Gros"},
        {AttnMap::quadratic, "quadratic", "s_ij^2 / (1e-6 + sum_l s_il^2)", true,
         "(QK)^2 without exp: the other reading of EA"},
        {AttnMap::cog, "cog", "sign(s_ij) exp(|s_ij|) / sum_l exp(|s_il|)", true,
         "Cog attention, Lv et al."},
        {AttnMap::extensive, "extensive", "s_ij^2 / (1 + s_ij^2)", false,
         "attnlab's own definition (not normalised over keys)"},
        {AttnMap::sigmoid, "sigmoid", "1 / (1 + exp(-(s_ij - ln T)))", false,
         "sigmoid attention with bias -ln T"},
    };
    return maps;
}

const AttnMapInfo& attention_map_info(AttnMap map) {
    for (const auto& m : all_attention_maps())
        if (m.map == map) return m;
    return all_attention_maps().front();
}

std::optional<AttnMap> attention_map_from_name(std::string_view name) {
    for (const auto& m : all_attention_maps())
        if (name == m.name) return m.map;
    return std::nullopt;
}

std::string attention_map_names() {
    std::string s;
    for (const auto& m : all_attention_maps()) s += (s.empty() ? "" : ", ") + std::string(m.name);
    return s;
}

static constexpr float kQuadraticEps = 1e-6f;

bool attention_map_needs_scores(AttnMap map) {
    return map == AttnMap::expressive || map == AttnMap::quadratic || map == AttnMap::extensive;
}

namespace {

// Rows are processed in 16-lane chunks over [0, cap), cap >= n; lanes j >= n are
// masked off (their weights and score gradients are 0). Chunks inside cap are
// loaded and stored directly, a last partial one through a zero-padded copy.
inline Vec16 load_chunk(const float* p, int j0, int cap) {
    if (j0 + kLanes <= cap) return load16(p + j0);
    float t[kLanes] = {};
    std::memcpy(t, p + j0, sizeof(float) * size_t(cap - j0));
    return load16(t);
}
inline void store_chunk(float* p, int j0, int cap, Vec16 v) {
    if (j0 + kLanes <= cap) return store16(p + j0, v);
    float t[kLanes];
    store16(t, v);
    std::memcpy(p + j0, t, sizeof(float) * size_t(cap - j0));
}
inline Vec16 valid(Vec16 v, int j0, int n) {
    return lane_index(j0) < float(n) ? v : splat(0.0f);
}

// Family softmax/expressive/cog: w = c p, p = softmax(f(s)); f = s, s^2, |s|; c = 1, 1, sign(s).
inline Vec16 family_f(AttnMap map, Vec16 s) {
    return map == AttnMap::softmax ? s : map == AttnMap::expressive ? s * s : vabs(s);
}

// Block rows r = 0..R-1: w_r = w + r ld, s_r = s + r ld, row r has n0 + r dn valid
// lanes of its chunks over [0, cap) (dn = 1 causal, 0 bidirectional). Writes each row's weights up to a common factor,
// w_r = scale[r] * (what is stored), so the normalisation can ride on a later pass
// (softmax family: exp(f(s) - max) times c, scale 1 / sum; quadratic: s^2, scale
// 1 / (eps + sum); others: scale 1). The rows are interleaved chunk by chunk, so
// the dependency chains of their sums and maxima overlap.
template <int R>
void map_forward(AttnMap map, float* w, float* scale, const float* s, size_t ld, int n0, int dn,
                 int cap, float log_T) {
    auto sv = [&](int r, int j0) { return load_chunk(s + r * ld, j0, cap); };
    auto put = [&](int r, int j0, Vec16 v) {
        store_chunk(w + r * ld, j0, cap, valid(v, j0, n0 + r * dn));
    };
    for (int r = 0; r < R; r++) scale[r] = 1.0f;
    switch (map) {
        case AttnMap::softmax:
        case AttnMap::expressive:
        case AttnMap::cog: {
            Vec16 m[R], z[R];
            for (int r = 0; r < R; r++) m[r] = splat(-INFINITY), z[r] = splat(0.0f);
            for (int j0 = 0; j0 < cap; j0 += kLanes)
                for (int r = 0; r < R; r++)
                    m[r] = vmax(m[r], lane_index(j0) < float(n0 + r * dn) ? family_f(map, sv(r, j0))
                                                                     : splat(-INFINITY));
            for (int r = 0; r < R; r++) m[r] = max_lanes(m[r]);
            for (int j0 = 0; j0 < cap; j0 += kLanes)
                for (int r = 0; r < R; r++) {
                    const Vec16 e = valid(fast_exp(family_f(map, sv(r, j0)) - m[r]), j0, n0 + r * dn);
                    z[r] += e;
                    store_chunk(w + r * ld, j0, cap,
                                map == AttnMap::cog ? e * vsign(sv(r, j0)) : e);
                }
            for (int r = 0; r < R; r++) scale[r] = 1.0f / sum_lanes(z[r])[0];
            break;
        }
        case AttnMap::quadratic: {
            Vec16 z[R];
            for (int r = 0; r < R; r++) z[r] = splat(0.0f);
            for (int j0 = 0; j0 < cap; j0 += kLanes)
                for (int r = 0; r < R; r++) {
                    const Vec16 sq = valid(sv(r, j0) * sv(r, j0), j0, n0 + r * dn);
                    z[r] += sq;
                    store_chunk(w + r * ld, j0, cap, sq);
                }
            for (int r = 0; r < R; r++) scale[r] = 1.0f / (kQuadraticEps + sum_lanes(z[r])[0]);
            break;
        }
        case AttnMap::extensive:
            for (int j0 = 0; j0 < cap; j0 += kLanes)
                for (int r = 0; r < R; r++) {
                    const Vec16 sq = sv(r, j0) * sv(r, j0);
                    put(r, j0, sq / (1.0f + sq));
                }
            break;
        case AttnMap::sigmoid:
            for (int j0 = 0; j0 < cap; j0 += kLanes)
                for (int r = 0; r < R; r++) put(r, j0, 1.0f / (1.0f + fast_exp(log_T - sv(r, j0))));
            break;
    }
}

// ds may alias g; rows as in map_forward. For the softmax family p = |w| (for cog
// w = sign(s) p; where s = 0 both c and f' vanish), u = c g,
// ds = f'(s) p (u - sum_l p_l u_l), and sum_l p_l u_l = sum_l w_l g_l for all three.
template <int R>
void map_backward(AttnMap map, float* ds, const float* g, const float* w, const float* s, size_t ld,
                  int n0, int dn, int cap) {
    auto at = [&](const float* p, int r, int j0) { return load_chunk(p + r * ld, j0, cap); };
    Vec16 dot[R], z[R];
    for (int r = 0; r < R; r++) dot[r] = splat(0.0f), z[r] = splat(0.0f);
    for (int j0 = 0; j0 < cap; j0 += kLanes)
        for (int r = 0; r < R; r++) {
            dot[r] += valid(at(w, r, j0) * at(g, r, j0), j0, n0 + r * dn);
            if (map == AttnMap::quadratic) z[r] += valid(at(s, r, j0) * at(s, r, j0), j0, n0 + r * dn);
        }
    for (int r = 0; r < R; r++)
        dot[r] = sum_lanes(dot[r]), z[r] = 2.0f / (kQuadraticEps + sum_lanes(z[r]));
    for (int j0 = 0; j0 < cap; j0 += kLanes)
        for (int r = 0; r < R; r++) {
            const Vec16 gv = at(g, r, j0), wv = at(w, r, j0), d = dot[r];
            Vec16 v = {};
            switch (map) {
                case AttnMap::softmax:
                    v = wv * (gv - d);
                    break;
                case AttnMap::expressive:
                    v = 2.0f * at(s, r, j0) * wv * (gv - d);
                    break;
                // sign(s) p (sign(s) g - dot) = |w| (g - sign(s) dot); at s = 0 both are 0 (w = 0)
                case AttnMap::cog:
                    v = vabs(wv) * (gv - vsign(at(s, r, j0)) * d);
                    break;
                // ds = (2 s / Z) (g - sum_l w_l g_l)
                case AttnMap::quadratic:
                    v = z[r] * at(s, r, j0) * (gv - d);
                    break;
                case AttnMap::extensive: {
                    const Vec16 sv = at(s, r, j0), den = 1.0f + sv * sv;
                    v = gv * 2.0f * sv / (den * den);
                    break;
                }
                case AttnMap::sigmoid:
                    v = gv * wv * (1.0f - wv);
                    break;
            }
            store_chunk(ds + r * ld, j0, cap, valid(v, j0, n0 + r * dn));
        }
}

}  // namespace

void attn_map_forward(AttnMap map, float* w, const float* s, int n, float log_T) {
    float scale;
    map_forward<1>(map, w, &scale, s, 0, n, 0, n, log_T);
    for (int j = 0; j < n; j++) w[j] *= scale;
}

void attn_map_backward(AttnMap map, float* ds, const float* g, const float* w, const float* s,
                       int n) {
    map_backward<1>(map, ds, g, w, s, 0, n, 0, n);
}

void alibi_slopes(float* slopes, int H) {
    for (int h = 1; h <= H; h++) slopes[h - 1] = float(std::pow(2.0, -8.0 * h / H));
}

namespace {

constexpr int kRows = 8;  // query rows per block: 8 accumulator registers per 16 columns

// The query rows i0 .. i0 + rows - 1 of one block and the keys they see: row r sees
// n0 + r dn keys (causal: j <= i, so n0 = i0 + 1, dn = 1; bidirectional: all T, dn = 0),
// all of them below jend; jv = jend rounded up to whole 16-lane chunks.
struct RowBlock {
    int rows, jend, jv, n0, dn;
    RowBlock(int i0, int T, bool causal)
        : rows(std::min(kRows, T - i0)), jend(causal ? i0 + rows : T), jv(round_up(jend, kLanes)),
          n0(causal ? i0 + 1 : T), dn(causal ? 1 : 0) {}
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
                            store16(s, load16(s) -
                                           alibi[h] * vabs(float(i0 + r) - lane_index(j0)));
                        }
                // w = map(s) row by row, as wtile times a factor per row; w_ij = 0 for j
                // outside A(i) (j < jv)
                float factor[kRows];
                if (rows == kRows)
                    map_forward<kRows>(map, sc.wtile, factor, sc.tile, sc.Tp, blk.n0, blk.dn, jv,
                                       log_T);
                else
                    for (int r = 0; r < rows; r++)
                        map_forward<1>(map, sc.wtile + size_t(r) * sc.Tp, factor + r,
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
            const float* s_bh =
                attention_map_needs_scores(map) ? scores + size_t(bh) * T * T : nullptr;
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
                    map_backward<kRows>(map, sc.tile, sc.tile, sc.wtile, s_tile, sc.Tp, blk.n0,
                                        blk.dn, jv);
                else
                    for (int r = 0; r < rows; r++) {
                        const size_t o = size_t(r) * sc.Tp;
                        map_backward<1>(map, sc.tile + o, sc.tile + o, sc.wtile + o, s_tile + o, 0,
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
