// exp and tanh without libm calls, so the compiler can vectorise the loops
// that use them (libm's scalar tanhf/expf dominated the training profile).
// fast_exp: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, then a degree-6
// Taylor polynomial: relative error below 2e-7 (about 2 ulp) over the float range.
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace attnlab {

// The steps of fast_exp, shared with its 16-lane form in vec.h (V = float or Vec16).
inline constexpr float kExpMin = -87.0f, kExpMax = 88.0f;  // exp stays a normal float
inline constexpr float kLog2e = 1.44269504f;
inline constexpr float kLn2Hi = 0.693145752f, kLn2Lo = 1.42860677e-6f;  // ln2 split hi + lo

// exp(r) for |r| <= ln2/2: the degree-6 Taylor polynomial in Horner form.
template <class V>
inline V exp_taylor6(V r) {
    V p = V{} + 1.0f / 720.0f;  // a constant (splat for vectors)
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    return p * r + 1.0f;
}

inline float fast_exp(float x) {
    // The clamp maps NaN to kExpMax (std::min returns its first argument when
    // unordered), so the float-to-int conversion below never sees a NaN (that
    // would be undefined); the NaN itself is passed through at the end.
    const float xc = std::max(kExpMin, std::min(kExpMax, x));
    // round(x / ln2): the argument is in [-126, 128] here, so truncating the
    // shifted positive value is a floor (std::floor blocks vectorisation).
    const float n = float(int(xc * kLog2e + 128.5f)) - 128.0f;
    const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
    const int32_t bits = (int32_t(n) + 127) << 23;  // 2^n
    const float y = exp_taylor6(r) * std::bit_cast<float>(bits);
    return std::isnan(x) ? x : y;  // (GCC 12 keeps `x == x ? y : x` as a branch: no vectors)
}

// tanh(u) = 1 - 2 / (exp(2u) + 1); |u| > 9 is +-1 to float precision.
inline float fast_tanh(float u) {
    u = std::max(-9.0f, std::min(9.0f, u));
    return 1.0f - 2.0f / (fast_exp(2.0f * u) + 1.0f);
}

}  // namespace attnlab
