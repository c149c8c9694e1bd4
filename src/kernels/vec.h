// A 16-float vector (GCC/Clang vector extension) for the hand-blocked loops of
// the attention kernel: one AVX-512 register, or two AVX2 / four SSE registers
// where AVX-512 is missing; the compiler picks the instructions.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/fastmath.h"

namespace attnlab {

constexpr int kLanes = 16;
typedef float Vec16 __attribute__((vector_size(kLanes * sizeof(float))));
typedef int32_t Vec16i __attribute__((vector_size(kLanes * sizeof(int32_t))));

inline Vec16 load16(const float* p) {
    Vec16 v;
    std::memcpy(&v, p, sizeof v);  // an unaligned vector load
    return v;
}
inline void store16(float* p, Vec16 v) {
    std::memcpy(p, &v, sizeof v);
}

inline Vec16 splat(float x) {
    return Vec16{} + x;
}
inline Vec16 vmax(Vec16 a, Vec16 b) {
    return a > b ? a : b;
}
inline Vec16 vmin(Vec16 a, Vec16 b) {
    return a < b ? a : b;
}
inline Vec16 vabs(Vec16 a) {
    return a < 0.0f ? -a : a;
}
inline Vec16 vsign(Vec16 a) {
    return a > 0.0f ? splat(1.0f) : a < 0.0f ? splat(-1.0f) : splat(0.0f);
}

// Lane l takes lane l ^ K (K = 8, 4, 2, 1): one butterfly step of a reduction.
template <int K>
inline Vec16 swap_lanes(Vec16 v) {
#if defined(__clang__)
    return __builtin_shufflevector(v, v, 0 ^ K, 1 ^ K, 2 ^ K, 3 ^ K, 4 ^ K, 5 ^ K, 6 ^ K, 7 ^ K,
                                   8 ^ K, 9 ^ K, 10 ^ K, 11 ^ K, 12 ^ K, 13 ^ K, 14 ^ K, 15 ^ K);
#else
    const Vec16i index = {0 ^ K, 1 ^ K, 2 ^ K,  3 ^ K,  4 ^ K,  5 ^ K,  6 ^ K,  7 ^ K,
                          8 ^ K, 9 ^ K, 10 ^ K, 11 ^ K, 12 ^ K, 13 ^ K, 14 ^ K, 15 ^ K};
    return __builtin_shuffle(v, index);
#endif
}

// The sum and the maximum of the lanes, in every lane: a tree in a fixed order
// (deterministic), four steps deep instead of fifteen.
inline Vec16 sum_lanes(Vec16 v) {
    v += swap_lanes<8>(v);
    v += swap_lanes<4>(v);
    v += swap_lanes<2>(v);
    return v + swap_lanes<1>(v);
}
inline Vec16 max_lanes(Vec16 v) {
    v = vmax(v, swap_lanes<8>(v));
    v = vmax(v, swap_lanes<4>(v));
    v = vmax(v, swap_lanes<2>(v));
    return vmax(v, swap_lanes<1>(v));
}

// The lane numbers j0, j0 + 1, ..., j0 + 15 as floats (for masks such as j <= i).
inline Vec16 lane_index(int j0) {
    const Vec16 iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    return iota + float(j0);
}

// fast_exp (fastmath.h) on every lane, the same steps: x = n ln2 + r, degree-6 polynomial.
// vmin(x, max) puts NaN lanes at max, so the conversion to int never sees a NaN
// (undefined behaviour); NaN lanes are passed through at the end, as in fast_exp.
inline Vec16 fast_exp(Vec16 x) {
    const Vec16 xc = vmax(splat(kExpMin), vmin(x, splat(kExpMax)));
    const Vec16i ni = __builtin_convertvector(xc * kLog2e + 128.5f, Vec16i) - 128;
    const Vec16 n = __builtin_convertvector(ni, Vec16);
    const Vec16 r = (xc - n * kLn2Hi) - n * kLn2Lo;
    const Vec16i bits = (ni + 127) << 23;  // 2^n
    const Vec16 y = exp_taylor6(r) * (Vec16)bits;
    return x == x ? y : x;
}

// fast_tanh (fastmath.h) on every lane: 1 - 2 / (exp(2u) + 1), |u| clamped to 9.
inline Vec16 fast_tanh(Vec16 u) {
    u = vmax(splat(-9.0f), vmin(u, splat(9.0f)));
    return 1.0f - 2.0f / (fast_exp(2.0f * u) + 1.0f);
}

// f(i0, rows of 16 lanes) over [0, n): whole vectors, then the last partial one
// through a zero-padded copy (f sees 16 valid-or-padding lanes and a lane count).
template <class F>
inline void for_each_vec(long n, F f) {
    long i = 0;
    for (; i + kLanes <= n; i += kLanes) f(i, kLanes);
    if (i < n) f(i, int(n - i));
}

// A load / store of `count` <= 16 lanes (the rest zero on load, untouched on store).
inline Vec16 load_part(const float* p, int count) {
    if (count == kLanes) return load16(p);
    float tmp[kLanes] = {};
    std::memcpy(tmp, p, sizeof(float) * size_t(count));
    return load16(tmp);
}
inline void store_part(float* p, Vec16 v, int count) {
    if (count == kLanes) return store16(p, v);
    float tmp[kLanes];
    store16(tmp, v);
    std::memcpy(p, tmp, sizeof(float) * size_t(count));
}

inline int round_up(int x, int m) {
    return (x + m - 1) / m * m;
}

}  // namespace attnlab
