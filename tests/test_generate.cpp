// Generation (src/model/generate.cpp): the key/value-cache decoder against
// Model::forward for every map, positional encoding and block variant, the
// sliding window, sampling.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "model/generate.h"
#include "model/model.h"

namespace attnlab {
namespace {

// A small model with parameters large enough that every map is far from uniform.
std::unique_ptr<Model> random_model(ModelConfig cfg, uint64_t seed) {
    auto model = make_model(cfg, 1);
    model->init_params(seed);
    Rng rng(seed + 100);
    for (const ParamInfo& p : model->table().entries()) {
        float* x = model->params().data() + p.offset;
        for (size_t i = 0; i < p.size; i++) {
            if (p.decay)
                x[i] *= 12.0f;  // matrices: std 0.24
            else
                x[i] += float(0.1 * rng.normal());  // gains, biases
        }
    }
    return model;
}

std::vector<int32_t> random_tokens(int n, int V, uint64_t seed) {
    Rng rng(seed);
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = int32_t(rng.below(uint32_t(V)));
    return t;
}

// Largest |a - b| over a row, relative to the row's largest |b| (at least 1).
double row_error(const float* a, const float* b, int V) {
    double err = 0, scale = 1;
    for (int v = 0; v < V; v++) {
        err = std::max(err, std::fabs(double(a[v]) - b[v]));
        scale = std::max(scale, std::fabs(double(b[v])));
    }
    return err / scale;
}

// Logits of position n - 1 by Model::forward on tokens[0..n).
std::vector<float> forward_last(Model& model, const std::vector<int32_t>& tokens, int n) {
    const std::vector<int32_t> targets(size_t(n), 0);
    const std::vector<uint8_t> counted(size_t(n), 0);
    model.forward(Batch{tokens.data(), targets.data(), counted.data(), 1, n});
    const int V = model.config().vocab;
    const float* row = model.logits() + size_t(n - 1) * V;
    return {row, row + V};
}

constexpr double kTolerance = 1e-4;

// The cached decoder's logits at every position equal Model::forward's on the
// whole window (T = context) and, for maps without the sigmoid's ln T (which ties
// every row to the window length, see generate.h), the last row of Model::forward
// on each prefix.
void expect_cache_matches_forward(const ModelConfig& cfg, const std::string& what) {
    auto model = random_model(cfg, 3);
    const int T = cfg.context, V = cfg.vocab;
    const std::vector<int32_t> tokens = random_tokens(T, V, 9);
    auto dec = make_decoder(*model);
    std::vector<float> cached(size_t(T) * V);
    for (int t = 0; t < T; t++) {
        const float* row = dec->step(tokens[size_t(t)]);
        std::copy(row, row + V, cached.begin() + std::ptrdiff_t(t) * V);
    }
    EXPECT_EQ(dec->length(), T);
    EXPECT_THROW(dec->step(0), Error);  // full
    forward_last(*model, tokens, T);
    for (int t = 0; t < T; t++)
        ASSERT_LE(row_error(cached.data() + size_t(t) * V, model->logits() + size_t(t) * V, V),
                  kTolerance)
            << what << ", position " << t << " (whole window)";
    const bool sigmoid =
        std::count(cfg.attention.begin(), cfg.attention.end(), AttnMap::sigmoid) > 0;
    if (!sigmoid)
        for (int n = 1; n <= T; n++) {
            const std::vector<float> ref = forward_last(*model, tokens, n);
            ASSERT_LE(row_error(cached.data() + size_t(n - 1) * V, ref.data(), V), kTolerance)
                << what << ", position " << n - 1 << " (prefix)";
        }
    // After reset the decoder starts over.
    dec->reset();
    const float* first = dec->step(tokens[0]);
    EXPECT_LE(row_error(first, cached.data(), V), 1e-7) << what;
}

ModelConfig small_config() {
    ModelConfig cfg;
    cfg.vocab = 11;
    cfg.context = 12;
    cfg.dim = 16;
    cfg.heads = 4;
    cfg.layers = 2;
    cfg.ffn_mult = 2;
    return cfg;
}

TEST(Generate, CacheMatchesForwardForEveryMapAndPosition) {
    for (const AttnMapInfo& m : all_attention_maps())
        for (const PosEncoding pos : {PosEncoding::learned, PosEncoding::sinusoidal,
                                      PosEncoding::rope, PosEncoding::alibi, PosEncoding::none}) {
            ModelConfig cfg = small_config();
            cfg.pos = pos;
            cfg.attention.assign(size_t(cfg.layers), m.map);
            expect_cache_matches_forward(cfg, std::string(m.name) + " / " + pos_name(pos));
        }
}

TEST(Generate, CacheMatchesForwardForEveryBlockVariant) {
    ModelConfig base = small_config();
    base.layers = 3;
    base.pos = PosEncoding::rope;
    base.attention = resolve_attention("model.attention", "cogformer", 3);
    for (const NormPosition np : {NormPosition::pre, NormPosition::post})
        for (const NormKind nk : {NormKind::layernorm, NormKind::rmsnorm})
            for (const Activation act : {Activation::gelu, Activation::relu, Activation::swiglu}) {
                ModelConfig cfg = base;
                cfg.norm_position = np, cfg.norm = nk, cfg.ffn_act = act;
                expect_cache_matches_forward(cfg, norm_position_name(np) + " / " + norm_name(nk) +
                                                      " / " + activation_name(act));
            }
    ModelConfig cis = base;
    cis.arch = Arch::cisformer;
    cis.pos = PosEncoding::learned;
    cis.cis_linears = {"qkv", "proj", "fc", "ffn_proj"};
    expect_cache_matches_forward(cis, "cisformer, all maps per position");
    for (const Arch arch : {Arch::lstm, Arch::mlp}) {  // the forward-pass fallback
        ModelConfig cfg = small_config();
        cfg.arch = arch;
        cfg.attention.clear();
        expect_cache_matches_forward(cfg, arch_name(arch));
    }
}

TEST(Generate, SlidingWindowRestartsFromTheLastHalf) {
    ModelConfig cfg = small_config();
    cfg.context = 8;
    cfg.attention.assign(size_t(cfg.layers), AttnMap::softmax);
    auto model = random_model(cfg, 4);
    auto ref = random_model(cfg, 4);  // the same parameters, for Model::forward
    SlidingDecoder dec(*model);
    const std::vector<int32_t> tokens = random_tokens(40, cfg.vocab, 2);
    size_t expected_size = 0;
    for (size_t i = 0; i < tokens.size(); i++) {
        const float* logits = dec.feed(tokens[i]);
        // Fills to 8 tokens, then keeps the last 4 and grows again: 5, 6, 7, 8, 5, ...
        expected_size = expected_size == 8 ? 5 : expected_size + 1;
        const std::vector<int32_t>& w = dec.window();
        ASSERT_EQ(w.size(), expected_size) << i;
        ASSERT_TRUE(
            std::equal(w.begin(), w.end(), tokens.begin() + std::ptrdiff_t(i + 1 - w.size())))
            << "the window is not the latest tokens at step " << i;
        const std::vector<float> want = forward_last(*ref, w, int(w.size()));
        ASSERT_LE(row_error(logits, want.data(), cfg.vocab), kTolerance) << i;
    }
    EXPECT_THROW(dec.feed(cfg.vocab), Error);
}

TEST(Generate, SamplingRespectsTemperatureAndTopK) {
    const std::vector<float> logits{0.5f, 2.0f, -1.0f, 1.9f, 1.0f, 2.0f};
    const int V = int(logits.size());
    Rng rng(1);
    EXPECT_EQ(sample_token(logits.data(), V, {0.0f, 0}, rng), 1);  // greedy: first maximum
    EXPECT_EQ(sample_token(logits.data(), V, {1.0f, 1}, rng), 1);
    std::vector<int> hits(size_t(V), 0);
    for (int i = 0; i < 20000; i++) hits[size_t(sample_token(logits.data(), V, {1.0f, 3}, rng))]++;
    EXPECT_EQ(hits[0] + hits[2] + hits[4], 0) << "top-3 is {1, 5, 3}";
    // Within the top 3, frequencies follow softmax: p(1) = p(5) = e^2 / Z, p(3) = e^1.9 / Z.
    const double z = 2 * std::exp(2.0) + std::exp(1.9);
    EXPECT_NEAR(hits[3] / 20000.0, std::exp(1.9) / z, 0.015);
    EXPECT_NEAR(hits[1] / 20000.0, std::exp(2.0) / z, 0.015);
    // A low temperature concentrates on the maxima.
    int top = 0;
    for (int i = 0; i < 2000; i++) {
        const int32_t t = sample_token(logits.data(), V, {0.01f, 0}, rng);
        top += t == 1 || t == 5;
    }
    EXPECT_EQ(top, 2000);
}

TEST(Generate, IsReproducibleAndChecksItsArguments) {
    ModelConfig cfg = small_config();
    cfg.attention.assign(size_t(cfg.layers), AttnMap::cog);
    auto model = random_model(cfg, 5);
    const std::vector<int32_t> prompt{1, 2, 3};
    std::vector<int32_t> streamed;
    const auto a =
        generate(*model, prompt, 30, {0.8f, 5}, 42, [&](int32_t t) { streamed.push_back(t); });
    const auto b = generate(*model, prompt, 30, {0.8f, 5}, 42);
    const auto c = generate(*model, prompt, 30, {0.8f, 5}, 43);
    EXPECT_EQ(a.size(), 30u);  // past the context of 12: the sliding window takes over
    EXPECT_EQ(a, b);
    EXPECT_EQ(a, streamed);
    EXPECT_NE(a, c);
    for (const int32_t t : a) EXPECT_TRUE(t >= 0 && t < cfg.vocab);
    EXPECT_THROW(generate(*model, {}, 5, {}, 1), Error);
    EXPECT_THROW(generate(*model, std::vector<int32_t>{cfg.vocab}, 5, {}, 1), Error);
    EXPECT_THROW(generate(*model, prompt, 5, {-1.0f, 0}, 1), Error);
    EXPECT_THROW(generate(*model, prompt, 5, {1.0f, -2}, 1), Error);
}

}  // namespace
}  // namespace attnlab
