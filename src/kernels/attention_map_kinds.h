// The kinds of attention map. A map states its math as 16-lane functions in a
// small struct; its kind turns that into the blocked row kernels of AttnMapInfo
// (all loops and masks live here, written once per kind):
//
//   elementwise_map<M>   w_ij = w(s_ij), not normalised.
//       M::weight(s, log_T) -> w,  M::dweight(s, w) -> dw/ds,
//       M::needs_scores: whether dweight reads s (else it is handed w as s).
//       backward: dL/ds = g dw/ds.
//   exp_normalised_map<M>  w_ij = c_ij p_ij, p = softmax_j(f(s_ij)), c = 1 or sign(s).
//       M::f(s), M::df(s) = f'(s), M::is_signed (c = sign(s)), M::needs_scores.
//       backward (u = c g): dL/ds = f'(s) p (u - sum_l p_l u_l), and
//       sum_l p_l u_l = sum_l w_l g_l.
//   ratio_map<M>  w_ij = f(s_ij) / (eps + sum_l f(s_il)), f >= 0.
//       M::f(s), M::df(s), M::eps. backward: dL/ds = f'(s) / Z (g - sum_l w_l g_l),
//       Z = eps + sum_l f(s_l).
//
// A map is then one definition, e.g.
//   struct Gauss {  // w = exp(-s^2)
//       static constexpr bool needs_scores = true;
//       static Vec16 weight(Vec16 s, float) { return fast_exp(-s * s); }
//       static Vec16 dweight(Vec16 s, Vec16 w) { return -2.0f * s * w; }
//   };
//   register_attention_map(elementwise_map<Gauss>({"gauss", "exp(-s_ij^2)", ...}));
#pragma once
#include <cmath>
#include <cstring>

#include "kernels/attention_map.h"
#include "kernels/vec.h"

namespace attnlab {

// The text of a definition: name, formula of w_ij, dL/ds_ij, source.
struct AttnMapText {
    const char* name;
    const char* formula;
    const char* derivative;
    const char* source;
};

namespace map_rows {

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

// The rows of a block are interleaved chunk by chunk in every loop below, so the
// dependency chains of their sums and maxima overlap.

template <class M, int R>
void elementwise_forward(float* w, float* scale, const float* s, size_t ld, int n0, int dn, int cap,
                         float log_T) {
    for (int r = 0; r < R; r++) scale[r] = 1.0f;
    for (int j0 = 0; j0 < cap; j0 += kLanes)
        for (int r = 0; r < R; r++)
            store_chunk(w + r * ld, j0, cap,
                        valid(M::weight(load_chunk(s + r * ld, j0, cap), log_T), j0, n0 + r * dn));
}

template <class M, int R>
void elementwise_backward(float* ds, const float* g, const float* w, const float* s, size_t ld,
                          int n0, int dn, int cap) {
    auto at = [&](const float* p, int r, int j0) { return load_chunk(p + r * ld, j0, cap); };
    for (int j0 = 0; j0 < cap; j0 += kLanes)
        for (int r = 0; r < R; r++) {
            const Vec16 v = at(g, r, j0) * M::dweight(at(s, r, j0), at(w, r, j0));
            store_chunk(ds + r * ld, j0, cap, valid(v, j0, n0 + r * dn));
        }
}

// Stores exp(f(s) - max) (times sign(s) if signed), scale 1 / sum.
template <class M, int R>
void exp_normalised_forward(float* w, float* scale, const float* s, size_t ld, int n0, int dn,
                            int cap, float) {
    auto sv = [&](int r, int j0) { return load_chunk(s + r * ld, j0, cap); };
    Vec16 m[R], z[R];
    for (int r = 0; r < R; r++) m[r] = splat(-INFINITY), z[r] = splat(0.0f);
    for (int j0 = 0; j0 < cap; j0 += kLanes)
        for (int r = 0; r < R; r++)
            m[r] = vmax(m[r],
                        lane_index(j0) < float(n0 + r * dn) ? M::f(sv(r, j0)) : splat(-INFINITY));
    for (int r = 0; r < R; r++) m[r] = max_lanes(m[r]);
    for (int j0 = 0; j0 < cap; j0 += kLanes)
        for (int r = 0; r < R; r++) {
            const Vec16 e = valid(fast_exp(M::f(sv(r, j0)) - m[r]), j0, n0 + r * dn);
            z[r] += e;
            if constexpr (M::is_signed)
                store_chunk(w + r * ld, j0, cap, e * vsign(sv(r, j0)));
            else
                store_chunk(w + r * ld, j0, cap, e);
        }
    for (int r = 0; r < R; r++) scale[r] = 1.0f / sum_lanes(z[r])[0];
}

// dot_r = sum_l w_l g_l over the valid lanes of row r.
template <int R>
void weighted_dots(Vec16* dot, const float* g, const float* w, size_t ld, int n0, int dn, int cap) {
    for (int r = 0; r < R; r++) dot[r] = splat(0.0f);
    for (int j0 = 0; j0 < cap; j0 += kLanes)
        for (int r = 0; r < R; r++)
            dot[r] += valid(load_chunk(w + r * ld, j0, cap) * load_chunk(g + r * ld, j0, cap), j0,
                            n0 + r * dn);
    for (int r = 0; r < R; r++) dot[r] = sum_lanes(dot[r]);
}

// p = |w|; signed: f'(s) p (sign(s) g - dot) (where s = 0, p = 0); else f'(s) w (g - dot).
template <class M, int R>
void exp_normalised_backward(float* ds, const float* g, const float* w, const float* s, size_t ld,
                             int n0, int dn, int cap) {
    auto at = [&](const float* p, int r, int j0) { return load_chunk(p + r * ld, j0, cap); };
    Vec16 dot[R];
    weighted_dots<R>(dot, g, w, ld, n0, dn, cap);
    for (int j0 = 0; j0 < cap; j0 += kLanes)
        for (int r = 0; r < R; r++) {
            const Vec16 gv = at(g, r, j0), wv = at(w, r, j0), sv = at(s, r, j0);
            Vec16 v;
            if constexpr (M::is_signed)
                v = M::df(sv) * vabs(wv) * (vsign(sv) * gv - dot[r]);
            else
                v = M::df(sv) * wv * (gv - dot[r]);
            store_chunk(ds + r * ld, j0, cap, valid(v, j0, n0 + r * dn));
        }
}

// Stores f(s), scale 1 / (eps + sum f(s)).
template <class M, int R>
void ratio_forward(float* w, float* scale, const float* s, size_t ld, int n0, int dn, int cap,
                   float) {
    Vec16 z[R];
    for (int r = 0; r < R; r++) z[r] = splat(0.0f);
    for (int j0 = 0; j0 < cap; j0 += kLanes)
        for (int r = 0; r < R; r++) {
            const Vec16 f = valid(M::f(load_chunk(s + r * ld, j0, cap)), j0, n0 + r * dn);
            z[r] += f;
            store_chunk(w + r * ld, j0, cap, f);
        }
    for (int r = 0; r < R; r++) scale[r] = 1.0f / (M::eps + sum_lanes(z[r])[0]);
}

template <class M, int R>
void ratio_backward(float* ds, const float* g, const float* w, const float* s, size_t ld, int n0,
                    int dn, int cap) {
    auto at = [&](const float* p, int r, int j0) { return load_chunk(p + r * ld, j0, cap); };
    Vec16 dot[R], z[R];
    weighted_dots<R>(dot, g, w, ld, n0, dn, cap);
    for (int r = 0; r < R; r++) z[r] = splat(0.0f);
    for (int j0 = 0; j0 < cap; j0 += kLanes)
        for (int r = 0; r < R; r++) z[r] += valid(M::f(at(s, r, j0)), j0, n0 + r * dn);
    for (int r = 0; r < R; r++) z[r] = 1.0f / (M::eps + sum_lanes(z[r]));
    for (int j0 = 0; j0 < cap; j0 += kLanes)
        for (int r = 0; r < R; r++) {
            const Vec16 v = z[r] * M::df(at(s, r, j0)) * (at(g, r, j0) - dot[r]);
            store_chunk(ds + r * ld, j0, cap, valid(v, j0, n0 + r * dn));
        }
}

}  // namespace map_rows

template <class M>
AttnMapInfo elementwise_map(AttnMapText t) {
    using namespace map_rows;
    return {AttnMap{},
            t.name,
            t.formula,
            t.derivative,
            t.source,
            false,
            M::needs_scores,
            elementwise_forward<M, 1>,
            elementwise_forward<M, kAttnBlockRows>,
            elementwise_backward<M, 1>,
            elementwise_backward<M, kAttnBlockRows>};
}

template <class M>
AttnMapInfo exp_normalised_map(AttnMapText t) {
    using namespace map_rows;
    return {AttnMap{},
            t.name,
            t.formula,
            t.derivative,
            t.source,
            true,
            M::needs_scores,
            exp_normalised_forward<M, 1>,
            exp_normalised_forward<M, kAttnBlockRows>,
            exp_normalised_backward<M, 1>,
            exp_normalised_backward<M, kAttnBlockRows>};
}

// Backward always reads s (Z is recomputed from the scores).
template <class M>
AttnMapInfo ratio_map(AttnMapText t) {
    using namespace map_rows;
    return {AttnMap{},
            t.name,
            t.formula,
            t.derivative,
            t.source,
            true,
            true,
            ratio_forward<M, 1>,
            ratio_forward<M, kAttnBlockRows>,
            ratio_backward<M, 1>,
            ratio_backward<M, kAttnBlockRows>};
}

}  // namespace attnlab
