// The LSTM and the windowed MLP: backward accumulation, causality, the MLP's
// window, parameter counts, init and checkpoints. Their gradient checks (model and
// kernels) are entries of the gradient-check tables (src/model/gradcheck*.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/gemm.h"
#include "core/rng.h"
#include "model/model.h"

using namespace attnlab;

namespace {

// The tests below run tiny shapes single-threaded (as check_model does): on a loaded
// machine the fork/join of a parallel region per LSTM time step costs more than the work.
ModelConfig lstm_config(int layers = 2) {
    ModelConfig cfg;
    cfg.arch = Arch::lstm;
    cfg.vocab = 9, cfg.context = 8, cfg.dim = 16, cfg.layers = layers;
    return cfg;
}

ModelConfig mlp_config(int window, int layers = 2, int hidden = 0) {
    ModelConfig cfg;
    cfg.arch = Arch::mlp;
    cfg.vocab = 9, cfg.context = 8, cfg.dim = 6, cfg.layers = layers;
    cfg.window = window, cfg.hidden = hidden;
    return cfg;
}

// A random batch of B windows of length T, every target counted.
struct RandomBatch {
    std::vector<int32_t> inp, tgt;
    std::vector<uint8_t> counted;
    int B, T;
    RandomBatch(int B_, int T_, int V, uint64_t seed) : B(B_), T(T_) {
        Rng rng(seed);
        const size_t n = size_t(B) * T;
        inp.resize(n), tgt.resize(n), counted.assign(n, 1);
        for (size_t i = 0; i < n; i++)
            inp[i] = int32_t(rng.below(uint32_t(V))), tgt[i] = int32_t(rng.below(uint32_t(V)));
    }
    Batch batch() const { return {inp.data(), tgt.data(), counted.data(), B, T}; }
};

// Parameters at scale ~0.3 so a token's effect on later logits is far above rounding.
void scale_params(Model& m, uint64_t seed) {
    Rng rng(seed);
    for (const auto& p : m.table().entries())
        for (size_t i = 0; i < p.size; i++) m.params()[p.offset + i] = float(0.3 * rng.normal());
}

std::vector<float> logits_of(Model& m, const Batch& b) {
    m.forward(b);
    return {m.logits(), m.logits() + size_t(b.B) * b.T * m.config().vocab};
}

}  // namespace

TEST(RnnBackward, TwiceDoublesEveryGradient) {
    ThreadScope one_thread(1);
    for (const ModelConfig& cfg : {lstm_config(2), mlp_config(3), mlp_config(0, 1)}) {
        auto model = make_model(cfg, 3);
        model->init_params(5);
        const RandomBatch rb(3, 8, cfg.vocab, 9);
        const Batch b = rb.batch();
        model->zero_grad();
        model->forward(b);
        model->backward(b);
        std::vector<float> once(model->grads().data(),
                                model->grads().data() + model->grads().size());
        model->backward(b);
        double nonzero = 0;
        for (size_t i = 0; i < once.size(); i++) {
            // Not bit-exact: the second pass adds into non-zero sums (gemm with beta = 1).
            EXPECT_NEAR(model->grads()[i], 2.0f * once[i], 1e-5 * std::fabs(once[i]) + 1e-9)
                << arch_name(cfg.arch) << " index " << i;
            nonzero += once[i] != 0.0f;
        }
        EXPECT_GT(nonzero, 0.9 * double(model->table().count())) << arch_name(cfg.arch);
    }
}

// Changing the token at position s changes no logit before s, and does change logits at s.
TEST(RnnCausality, FutureTokensDoNotChangeEarlierLogits) {
    ThreadScope one_thread(1);
    for (const ModelConfig& cfg : {lstm_config(2), mlp_config(3), mlp_config(0)}) {
        auto model = make_model(cfg, 2);
        scale_params(*model, 7);
        const int T = cfg.context, V = cfg.vocab;
        for (int s : {1, 4, T - 1}) {
            RandomBatch rb(2, T, V, 11);
            const auto before = logits_of(*model, rb.batch());
            for (int b = 0; b < 2; b++) {
                int32_t& tok = rb.inp[size_t(b) * T + s];
                tok = (tok + 1) % V;
            }
            const auto after = logits_of(*model, rb.batch());
            for (int b = 0; b < 2; b++) {
                for (int t = 0; t < T; t++) {
                    double diff = 0;
                    for (int v = 0; v < V; v++) {
                        const size_t i = (size_t(b) * T + t) * V + v;
                        diff = std::max(diff, double(std::fabs(after[i] - before[i])));
                    }
                    if (t < s) {
                        EXPECT_EQ(diff, 0.0) << arch_name(cfg.arch) << " s " << s << " t " << t;
                    } else if (t == s) {
                        EXPECT_GT(diff, 1e-4) << arch_name(cfg.arch) << " s " << s << " t " << t;
                    }
                }
            }
        }
    }
}

// A shorter window gives the same logits as the first positions of a longer one
// (the state starts at zero in every window; nothing depends on T).
TEST(RnnCausality, ShorterWindowIsAPrefix) {
    ThreadScope one_thread(1);
    for (const ModelConfig& cfg : {lstm_config(2), mlp_config(3), mlp_config(0)}) {
        auto model = make_model(cfg, 2);
        scale_params(*model, 8);
        const int T = cfg.context, V = cfg.vocab, Ts = 5;
        const RandomBatch rb(2, T, V, 12);
        const auto full = logits_of(*model, rb.batch());
        RandomBatch short_rb(2, Ts, V, 0);
        for (int b = 0; b < 2; b++)
            for (int t = 0; t < Ts; t++)
                short_rb.inp[size_t(b) * Ts + t] = rb.inp[size_t(b) * T + t];
        const auto part = logits_of(*model, short_rb.batch());
        for (int b = 0; b < 2; b++)
            for (int t = 0; t < Ts; t++)
                for (int v = 0; v < V; v++)
                    EXPECT_NEAR(part[(size_t(b) * Ts + t) * V + v],
                                full[(size_t(b) * T + t) * V + v], 1e-5)
                        << arch_name(cfg.arch) << " b " << b << " t " << t;
    }
}

// The MLP at position t sees exactly tokens t-W+1..t.
TEST(MlpWindow, TokenOutsideTheWindowHasNoEffect) {
    ThreadScope one_thread(1);
    for (int W : {1, 3, 8}) {
        const ModelConfig cfg = mlp_config(W);
        auto model = make_model(cfg, 2);
        scale_params(*model, 9);
        const int T = cfg.context, V = cfg.vocab;
        for (int s = 0; s < T; s++) {
            RandomBatch rb(2, T, V, 13);
            const auto before = logits_of(*model, rb.batch());
            for (int b = 0; b < 2; b++) {
                int32_t& tok = rb.inp[size_t(b) * T + s];
                tok = (tok + 1) % V;
            }
            const auto after = logits_of(*model, rb.batch());
            for (int b = 0; b < 2; b++)
                for (int t = 0; t < T; t++) {
                    double diff = 0;
                    for (int v = 0; v < V; v++) {
                        const size_t i = (size_t(b) * T + t) * V + v;
                        diff = std::max(diff, double(std::fabs(after[i] - before[i])));
                    }
                    const bool sees = s <= t && t - s <= W - 1;
                    if (sees)
                        EXPECT_GT(diff, 1e-4) << "W " << W << " s " << s << " t " << t;
                    else
                        EXPECT_EQ(diff, 0.0) << "W " << W << " s " << s << " t " << t;
                }
        }
    }
}

TEST(RnnParams, CountsNamesAndShapes) {
    {
        const ModelConfig cfg = lstm_config(3);
        auto m = make_model(cfg, 1);
        const size_t V = cfg.vocab, C = cfg.dim, L = cfg.layers;
        EXPECT_EQ(m->table().count(), 2 * V * C + V + L * (8 * C * C + 4 * C));
        EXPECT_EQ(m->table().at("lstm.2.weight_ih").shape, (std::vector<int64_t>{64, 16}));
        EXPECT_EQ(m->table().at("lstm.0.weight_hh").shape, (std::vector<int64_t>{64, 16}));
        EXPECT_EQ(m->table().at("lstm.1.bias").shape, (std::vector<int64_t>{64}));
        EXPECT_EQ(m->table().at("head.weight").shape, (std::vector<int64_t>{9, 16}));
        EXPECT_EQ(m->table().find("pos_emb.weight"), nullptr);
        EXPECT_EQ(m->table().entries().size(), 2 + 3 * L + 1);
    }
    for (int window : {0, 3})
        for (int hidden : {0, 10}) {
            const ModelConfig cfg = mlp_config(window, 3, hidden);
            auto m = make_model(cfg, 1);
            const size_t V = cfg.vocab, C = cfg.dim, L = cfg.layers;
            const size_t W = window ? window : cfg.context, F = hidden ? hidden : 4 * C;
            EXPECT_EQ(m->table().count(),
                      V * C + F * W * C + F + (L - 1) * (F * F + F) + V * F + V);
            EXPECT_EQ(m->table().at("mlp.0.weight").shape,
                      (std::vector<int64_t>{int64_t(F), int64_t(W * C)}));
            EXPECT_EQ(m->table().at("mlp.2.weight").shape,
                      (std::vector<int64_t>{int64_t(F), int64_t(F)}));
            EXPECT_EQ(m->table().at("head.weight").shape,
                      (std::vector<int64_t>{int64_t(V), int64_t(F)}));
        }
}

TEST(RnnParams, LstmForgetBiasStartsAtOne) {
    const ModelConfig cfg = lstm_config(2);
    auto m = make_model(cfg, 1);
    m->init_params(1);
    const int C = cfg.dim;
    for (int l = 0; l < 2; l++) {
        const auto& p = m->table().at("lstm." + std::to_string(l) + ".bias");
        for (int k = 0; k < 4 * C; k++)
            EXPECT_EQ(m->params()[p.offset + size_t(k)], k / C == 1 ? 1.0f : 0.0f) << l << " " << k;
        // weights are drawn, not left at zero
        const auto& w = m->table().at("lstm." + std::to_string(l) + ".weight_hh");
        double ss = 0;
        for (size_t i = 0; i < w.size; i++)
            ss += double(m->params()[w.offset + i]) * m->params()[w.offset + i];
        EXPECT_NEAR(std::sqrt(ss / double(w.size)), 0.02, 0.004);
    }
}

TEST(RnnParams, SaveLoadRoundTrip) {
    ThreadScope one_thread(1);
    for (const ModelConfig& cfg : {lstm_config(2), mlp_config(3)}) {
        const std::string path =
            std::string(::testing::TempDir()) + "rnn_" + arch_name(cfg.arch) + ".safetensors";
        auto a = make_model(cfg, 2);
        scale_params(*a, 21);
        save_params(*a, path);
        auto b = make_model(cfg, 2);
        b->init_params(99);
        load_params(*b, path);
        for (const auto& p : a->table().entries())
            for (size_t i = p.offset; i < p.offset + p.size; i++)
                ASSERT_EQ(a->params()[i], b->params()[i]) << p.name;
        const RandomBatch rb(2, cfg.context, cfg.vocab, 5);
        const auto la = logits_of(*a, rb.batch()), lb = logits_of(*b, rb.batch());
        EXPECT_EQ(la, lb);
        // A checkpoint of the other architecture is refused, naming a tensor.
        const ModelConfig other = cfg.arch == Arch::lstm ? mlp_config(3) : lstm_config(2);
        auto c = make_model(other, 2);
        EXPECT_THROW(load_params(*c, path), Error);
    }
}

TEST(RnnConfig, ValidateRefusesNonsense) {
    ModelConfig cfg = mlp_config(9);  // window > context 8
    EXPECT_THROW(validate(cfg), Error);
    cfg.window = -1;
    EXPECT_THROW(validate(cfg), Error);
    cfg.window = 8;
    EXPECT_NO_THROW(validate(cfg));
    cfg.hidden = -3;
    EXPECT_THROW(validate(cfg), Error);
    cfg = lstm_config();
    cfg.pos = PosEncoding::rope;
    EXPECT_THROW(validate(cfg), Error);
    cfg.pos = PosEncoding::none;
    EXPECT_NO_THROW(validate(cfg));
    cfg.window = 2;  // an MLP key on an LSTM
    EXPECT_THROW(validate(cfg), Error);
    // The JSON of a checkpoint round-trips.
    const ModelConfig m = mlp_config(3, 2, 12);
    const ModelConfig back = model_config_from_json(to_json(m));
    EXPECT_EQ(back.window, 3);
    EXPECT_EQ(back.hidden, 12);
    EXPECT_EQ(back.arch, Arch::mlp);
}

// Forward and backward do not depend on the thread count: every parallel loop
// owns its outputs and sums in a fixed order.
TEST(RnnDeterminism, ThreadCountDoesNotChangeResults) {
    for (ModelConfig cfg : {lstm_config(2), mlp_config(5)}) {
        cfg.dim = 32, cfg.context = 16, cfg.vocab = 11;
        auto model = make_model(cfg, 8);
        model->init_params(3);
        const RandomBatch rb(8, 16, cfg.vocab, 4);
        std::vector<std::vector<float>> logits, grads;
        std::vector<double> losses;
        for (int threads : {1, 4}) {
            ThreadScope scope(threads);
            model->zero_grad();
            losses.push_back(model->forward(rb.batch()).loss);
            logits.emplace_back(model->logits(), model->logits() + size_t(8) * 16 * cfg.vocab);
            model->backward(rb.batch());
            grads.emplace_back(model->grads().data(),
                               model->grads().data() + model->grads().size());
        }
        EXPECT_EQ(losses[0], losses[1]) << arch_name(cfg.arch);
        EXPECT_EQ(logits[0], logits[1]) << arch_name(cfg.arch);
        EXPECT_EQ(grads[0], grads[1]) << arch_name(cfg.arch);
    }
}
