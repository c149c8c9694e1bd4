// The blocked attention kernel (src/kernels/attention.cpp) agrees with plain
// loops for every map and head size.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/gemm.h"
#include "core/rng.h"
#include "kernels/attention.h"

using namespace attnlab;

// The blocked attention kernel against plain loops over the same maps, at head
// sizes with and without padding (4, 16, 32), a T that is not a multiple of the
// block or vector sizes, with and without ALiBi, causal and bidirectional.
TEST(AttentionKernel, MatchesPlainLoops) {
    for (int hs : {4, 16, 32})
        for (bool alibi : {false, true})
            for (bool causal : {true, false})
                for (const auto& m : all_attention_maps()) {
                    const AttentionShape sh{2, 21, 2 * hs, 2, causal};
                    const int B = sh.B, T = sh.T, C = sh.C, H = sh.H;
                    Rng rng(hs + 7);
                    std::vector<float> qkv(size_t(B) * T * 3 * C), dout(size_t(B) * T * C);
                    for (auto& x : qkv) x = float(0.7 * rng.normal());
                    for (auto& x : dout) x = float(rng.normal());
                    std::vector<float> slopes(H);
                    alibi_slopes(slopes.data(), H);
                    const size_t att = size_t(B) * H * T * T;
                    std::vector<float> out(size_t(B) * T * C), scores(att), weights(att),
                        dqkv(qkv.size(), 1.0f);
                    std::vector<float> scratch(size_t(get_threads()) *
                                               attention_scratch_floats(sh));
                    attention_forward(out.data(), scores.data(), weights.data(), scratch.data(),
                                      qkv.data(), m.map, alibi ? slopes.data() : nullptr, sh);
                    attention_backward(dqkv.data(), scratch.data(), dout.data(), qkv.data(),
                                       scores.data(), weights.data(), m.map, sh,
                                       GradStore::overwrite);
                    // plain loops, in double where they sum
                    std::vector<double> ref_out(out.size()), ref_d(qkv.size());
                    std::vector<float> s(T), w(T), g(T), ds(T);
                    const double scale = 1.0 / std::sqrt(double(hs));
                    for (int b = 0; b < B; b++)
                        for (int h = 0; h < H; h++)
                            for (int i = 0; i < T; i++) {
                                const int n = causal ? i + 1 : T;  // the keys query i sees
                                auto q = [&](int t, int d) {
                                    return qkv[(size_t(b) * T + t) * 3 * C + h * hs + d];
                                };
                                auto k = [&](int t, int d) { return q(t, C + d); };
                                auto v = [&](int t, int d) { return q(t, 2 * C + d); };
                                for (int j = 0; j < n; j++) {
                                    double dot = 0;
                                    for (int d = 0; d < hs; d++) dot += double(q(i, d)) * k(j, d);
                                    s[j] = float(dot * scale -
                                                 (alibi ? slopes[h] * std::abs(i - j) : 0.0));
                                }
                                attn_map_forward(m.map, w.data(), s.data(), n, std::log(float(T)));
                                const float* dy = dout.data() + (size_t(b) * T + i) * C + h * hs;
                                for (int j = 0; j < n; j++) {
                                    double gj = 0;
                                    for (int d = 0; d < hs; d++) {
                                        ref_out[(size_t(b) * T + i) * C + h * hs + d] +=
                                            double(w[j]) * v(j, d);
                                        gj += double(dy[d]) * v(j, d);
                                        ref_d[(size_t(b) * T + j) * 3 * C + 2 * C + h * hs + d] +=
                                            double(w[j]) * dy[d];
                                    }
                                    g[j] = float(gj);
                                }
                                attn_map_backward(m.map, ds.data(), g.data(), w.data(), s.data(),
                                                  n);
                                for (int j = 0; j < n; j++)
                                    for (int d = 0; d < hs; d++) {
                                        ref_d[(size_t(b) * T + i) * 3 * C + h * hs + d] +=
                                            ds[j] * scale * k(j, d);
                                        ref_d[(size_t(b) * T + j) * 3 * C + C + h * hs + d] +=
                                            ds[j] * scale * q(i, d);
                                    }
                            }
                    auto max_rel = [](const std::vector<float>& a, const std::vector<double>& r) {
                        double diff = 0, mag = 0;
                        for (size_t i = 0; i < a.size(); i++)
                            diff = std::max(diff, std::fabs(a[i] - r[i])),
                            mag = std::max(mag, std::fabs(r[i]));
                        return diff / std::max(mag, 1e-12);
                    };
                    EXPECT_LT(max_rel(out, ref_out), 1e-5)
                        << m.name << " hs " << hs << " alibi " << alibi << " causal " << causal;
                    EXPECT_LT(max_rel(dqkv, ref_d), 1e-4)
                        << m.name << " hs " << hs << " alibi " << alibi << " causal " << causal;
                }
}
