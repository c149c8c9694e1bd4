// The optimised kernels: the blocked attention kernel agrees with plain loops for
// every map and head size; and since work is split in blocks fixed by the shapes,
// never by the thread count, with every output summed in a fixed order, a
// transformer's and a cisformer's forward and backward give bitwise identical
// results for 1, 2 and 3 threads, and two runs with the same threads agree.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/gemm.h"
#include "core/rng.h"
#include "kernels/attention.h"
#include "model/model.h"

using namespace attnlab;

namespace {

struct Result {
    double loss;
    std::vector<float> logits, grads;
    bool operator==(const Result&) const = default;
};

// Shapes with a partial row block (N = 3 * 20 rows) and a partial 16-lane chunk.
Result run(Model& model, int threads, const Batch& b) {
    ThreadScope scope(threads);
    model.zero_grad();
    Result r;
    r.loss = model.forward(b).loss;
    r.logits.assign(model.logits(), model.logits() + size_t(b.B) * b.T * model.config().vocab);
    model.backward(b);
    r.grads.assign(model.grads().data(), model.grads().data() + model.grads().size());
    return r;
}

}  // namespace

TEST(Parallel, ThreadCountDoesNotChangeResults) {
    const int B = 3, T = 20;
    for (const auto& m : all_attention_maps())
        for (Arch arch : {Arch::transformer, Arch::cisformer}) {
            ModelConfig cfg;
            cfg.arch = arch;
            cfg.vocab = 11, cfg.context = T, cfg.dim = 32, cfg.heads = 2, cfg.layers = 2;
            cfg.attention.assign(2, m.map);
            ThreadScope most(3);  // the attention scratch is sized for the threads at build time
            auto model = make_model(cfg, B);
            model->init_params(5);
            Rng rng(6);
            std::vector<int32_t> inp(size_t(B) * T), tgt(inp.size());
            std::vector<uint8_t> counted(inp.size());
            for (size_t i = 0; i < inp.size(); i++)
                inp[i] = int32_t(rng.below(11)), tgt[i] = int32_t(rng.below(11)),
                counted[i] = i % 5 != 0;
            const Batch b{inp.data(), tgt.data(), counted.data(), B, T};
            const Result one = run(*model, 1, b);
            EXPECT_TRUE(one == run(*model, 1, b)) << m.name << ": two runs differ";
            EXPECT_TRUE(one == run(*model, 2, b))
                << m.name << " " << arch_name(arch) << ": 2 threads";
            if (m.map == AttnMap::softmax) {  // more threads than cores: slow on a loaded machine
                EXPECT_TRUE(one == run(*model, 3, b))
                    << m.name << " " << arch_name(arch) << ": 3 threads";
            }
        }
}

// The blocked attention kernel against plain loops over the same maps, at head
// sizes with and without padding (4, 16, 32), a T that is not a multiple of the
// block or vector sizes, with and without ALiBi, causal and bidirectional.
TEST(Parallel, AttentionKernelMatchesPlainLoops) {
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
                std::vector<float> scratch(size_t(get_threads()) * attention_scratch_floats(sh));
                attention_forward(out.data(), scores.data(), weights.data(), scratch.data(),
                                  qkv.data(), m.map, alibi ? slopes.data() : nullptr, sh);
                attention_backward(dqkv.data(), scratch.data(), dout.data(), qkv.data(),
                                   scores.data(), weights.data(), m.map, sh, GradStore::overwrite);
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
