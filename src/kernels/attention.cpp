// Attention maps (forward and backward rules from MODELS.md) and the fused
// multi-head causal attention kernel: per (batch, head) one score gemm, the
// map applied row by row over the causal prefix, one value gemm.
#include "kernels/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/gemm.h"
#include "kernels/fastmath.h"

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

// Family softmax/expressive/cog: w = c p, p = softmax(f(s)); f = s, s^2, |s|; c = 1, 1, sign(s).
static inline float family_f(AttnMap map, float s) {
    return map == AttnMap::softmax ? s : map == AttnMap::expressive ? s * s : std::fabs(s);
}

static inline float sign(float s) { return float((s > 0.0f) - (s < 0.0f)); }

void attn_map_forward(AttnMap map, float* w, const float* s, int n, float log_T) {
    switch (map) {
        case AttnMap::softmax:
        case AttnMap::expressive:
        case AttnMap::cog: {
            float mx = -INFINITY;
            for (int j = 0; j < n; j++) mx = std::max(mx, family_f(map, s[j]));
            float z = 0.0f;
            for (int j = 0; j < n; j++) z += (w[j] = fast_exp(family_f(map, s[j]) - mx));
            const float inv = 1.0f / z;
            if (map == AttnMap::cog)
                for (int j = 0; j < n; j++) w[j] *= inv * sign(s[j]);
            else
                for (int j = 0; j < n; j++) w[j] *= inv;
            break;
        }
        case AttnMap::quadratic: {
            float z = kQuadraticEps;
            for (int j = 0; j < n; j++) z += s[j] * s[j];
            const float inv = 1.0f / z;
            for (int j = 0; j < n; j++) w[j] = s[j] * s[j] * inv;
            break;
        }
        case AttnMap::extensive:
            for (int j = 0; j < n; j++) w[j] = s[j] * s[j] / (1.0f + s[j] * s[j]);
            break;
        case AttnMap::sigmoid:
            for (int j = 0; j < n; j++) w[j] = 1.0f / (1.0f + fast_exp(-(s[j] - log_T)));
            break;
    }
}

void attn_map_backward(AttnMap map, float* ds, const float* g, const float* w, const float* s,
                       int n) {
    switch (map) {
        case AttnMap::softmax:
        case AttnMap::expressive:
        case AttnMap::cog: {
            // p = |w| (for cog, w = sign(s) p; where s = 0 both c and f' vanish),
            // u = c g, ds = f'(s) p (u - sum_l p_l u_l).
            float dot = 0.0f;
            for (int j = 0; j < n; j++) {
                const float u = map == AttnMap::cog ? sign(s[j]) * g[j] : g[j];
                dot += std::fabs(w[j]) * u;
            }
            for (int j = 0; j < n; j++) {
                const float p = std::fabs(w[j]);
                if (map == AttnMap::softmax)
                    ds[j] = p * (g[j] - dot);
                else if (map == AttnMap::expressive)
                    ds[j] = 2.0f * s[j] * p * (g[j] - dot);
                else
                    ds[j] = sign(s[j]) * p * (sign(s[j]) * g[j] - dot);
            }
            break;
        }
        case AttnMap::quadratic: {
            // ds = (2 s / Z) (g - sum_l w_l g_l)
            float z = kQuadraticEps, dot = 0.0f;
            for (int j = 0; j < n; j++) z += s[j] * s[j], dot += w[j] * g[j];
            for (int j = 0; j < n; j++) ds[j] = 2.0f * s[j] / z * (g[j] - dot);
            break;
        }
        case AttnMap::extensive:
            for (int j = 0; j < n; j++) {
                const float d = 1.0f + s[j] * s[j];
                ds[j] = g[j] * 2.0f * s[j] / (d * d);
            }
            break;
        case AttnMap::sigmoid:
            for (int j = 0; j < n; j++) ds[j] = g[j] * w[j] * (1.0f - w[j]);
            break;
    }
}

void alibi_slopes(float* slopes, int H) {
    for (int h = 1; h <= H; h++) slopes[h - 1] = float(std::pow(2.0, -8.0 * h / H));
}

void attention_forward(float* out, float* scores, float* weights, const float* qkv, AttnMap map,
                       const float* alibi, AttentionShape sh) {
    const int B = sh.B, T = sh.T, C = sh.C, H = sh.H, hs = sh.hs();
    const float scale = 1.0f / std::sqrt(float(hs));
    const float log_T = std::log(float(T));
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        const int b = bh / H, h = bh % H;
        const float* q = qkv + size_t(b) * T * 3 * C + h * hs;
        const float* k = q + C;
        const float* v = q + 2 * C;
        float* s = scores + size_t(bh) * T * T;
        float* w = weights + size_t(bh) * T * T;
        // s = q k^T / sqrt(hs), all T x T (the upper triangle is ignored below)
        gemm(false, true, T, T, hs, scale, q, 3 * C, k, 3 * C, 0.0f, s, T);
        for (int i = 0; i < T; i++) {
            float* si = s + size_t(i) * T;
            float* wi = w + size_t(i) * T;
            if (alibi)
                for (int j = 0; j <= i; j++) si[j] -= alibi[h] * float(i - j);
            attn_map_forward(map, wi, si, i + 1, log_T);
            for (int j = i + 1; j < T; j++) wi[j] = 0.0f, si[j] = 0.0f;
        }
        // out = w v
        gemm(false, false, T, hs, T, 1.0f, w, T, v, 3 * C, 0.0f,
             out + size_t(b) * T * C + h * hs, C);
    }
}

void attention_backward(float* dqkv, float* scratch, const float* dout, const float* qkv,
                        const float* scores, const float* weights, AttnMap map,
                        AttentionShape sh) {
    const int B = sh.B, T = sh.T, C = sh.C, H = sh.H, hs = sh.hs();
    const float scale = 1.0f / std::sqrt(float(hs));
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        const int b = bh / H, h = bh % H;
        float* g = scratch + size_t(omp_get_thread_num()) * T * T;  // dL/dw, then dL/ds
        const size_t row0 = size_t(b) * T * 3 * C + h * hs;
        const float* q = qkv + row0;
        const float* k = q + C;
        const float* v = q + 2 * C;
        float* dq = dqkv + row0;
        float* dk = dq + C;
        float* dv = dq + 2 * C;
        const float* s = scores + size_t(bh) * T * T;
        const float* w = weights + size_t(bh) * T * T;
        const float* dout_bh = dout + size_t(b) * T * C + h * hs;
        // forward: out = w v  =>  dw = dout v^T, dv += w^T dout
        gemm(false, true, T, T, hs, 1.0f, dout_bh, C, v, 3 * C, 0.0f, g, T);
        gemm(true, false, T, hs, T, 1.0f, w, T, dout_bh, C, 1.0f, dv, 3 * C);
        for (int i = 0; i < T; i++) {
            float* gi = g + size_t(i) * T;
            attn_map_backward(map, gi, gi, w + size_t(i) * T, s + size_t(i) * T, i + 1);
            for (int j = i + 1; j < T; j++) gi[j] = 0.0f;
        }
        // forward: s = q k^T * scale  =>  dq += ds k * scale, dk += ds^T q * scale
        gemm(false, false, T, hs, T, scale, g, T, k, 3 * C, 1.0f, dq, 3 * C);
        gemm(true, false, T, hs, T, scale, g, T, q, 3 * C, 1.0f, dk, 3 * C);
    }
}

}  // namespace attnlab
