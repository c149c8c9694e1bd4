// The text task (memory-mapped loader, train/validation split, file errors, bits
// per byte) and generation: the key/value-cache decoder against Model::forward for
// every map, positional encoding and block variant, the sliding window, sampling.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "model/generate.h"
#include "model/model.h"
#include "tasks/text.h"
#include "train/config.h"
#include "train/data.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
    return ::testing::TempDir() + "attnlab-text-" + name;
}

// Writes `bytes` to a fresh file and returns its path.
std::string write_file(const std::string& name, const std::vector<uint8_t>& bytes) {
    const std::string path = temp_path(name);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    return path;
}

// Uniform random bytes: any window of 16 or more bytes occurs once in the file
// (checked where it matters), so a window reveals the offset it was cut from.
std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
    Rng rng(seed);
    std::vector<uint8_t> b(n);
    for (auto& x : b) x = uint8_t(rng.below(256));
    return b;
}

std::unique_ptr<Task> text_task(const std::string& path) {
    TaskConfig cfg;
    cfg.name = "text";
    cfg.path = path;
    return make_task(cfg);
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// Offset of `window` in `file`; fails the test unless it occurs exactly once.
size_t locate(const std::vector<uint8_t>& file, const std::vector<int32_t>& window) {
    const std::vector<uint8_t> w(window.begin(), window.end());
    const auto at = std::search(file.begin(), file.end(), w.begin(), w.end());
    EXPECT_NE(at, file.end()) << "window is not a slice of the file";
    if (at == file.end()) return 0;
    EXPECT_EQ(std::search(at + 1, file.end(), w.begin(), w.end()), file.end())
        << "window not unique";
    return size_t(at - file.begin());
}

TEST(TextTask, WindowsAreExactSlicesOfTheirPart) {
    const size_t size = 400;  // split at 360: train [0, 360), validation [360, 400)
    const std::vector<uint8_t> file = random_bytes(size, 5);
    const auto task = text_task(write_file("slices.bin", file));
    ASSERT_EQ(task->name(), "text");
    EXPECT_EQ(task->vocab(), 256);
    EXPECT_EQ(task->label_names(), std::vector<std::string>{"text"});
    EXPECT_TRUE(task->byte_level());
    const size_t cut = text_split_point(size);
    ASSERT_EQ(cut, 360u);
    const int T = 19;  // windows of 20 bytes
    const auto& train = dynamic_cast<const TextTask&>(*task);
    const auto& valid = dynamic_cast<const TextTask&>(task->eval_task());
    EXPECT_EQ(train.split(), TextSplit::train);
    EXPECT_EQ(valid.split(), TextSplit::validation);
    EXPECT_EQ(train.begin(), 0u);
    EXPECT_EQ(train.end(), cut);
    EXPECT_EQ(valid.begin(), cut);
    EXPECT_EQ(valid.end(), size);
    EXPECT_EQ(&valid.eval_task(), &valid);

    size_t lo[2] = {size, size}, hi[2] = {0, 0};
    for (int part = 0; part < 2; part++) {
        const Task& t = part == 0 ? *task : task->eval_task();
        for (uint64_t i = 0; i < 3000; i++) {
            const Window w = sample_window(t, 11, i, T);
            ASSERT_EQ(w.tokens.size(), size_t(T) + 1);
            for (int j = 0; j < T; j++) {
                ASSERT_EQ(w.counted[j], 1) << "every target is counted";
                ASSERT_EQ(w.label[j], 0);
            }
            const size_t off = locate(file, w.tokens);
            if (part == 0)
                ASSERT_LE(off + T + 1, cut) << "a training window reads validation bytes";
            else
                ASSERT_GE(off, cut) << "a validation window reads training bytes";
            lo[part] = std::min(lo[part], off), hi[part] = std::max(hi[part], off);
        }
    }
    // Every offset is reachable: the first and last possible windows of both parts occur.
    EXPECT_EQ(lo[0], 0u);
    EXPECT_EQ(hi[0], cut - T - 1);
    EXPECT_EQ(lo[1], cut);
    EXPECT_EQ(hi[1], size - T - 1);
}

TEST(TextTask, BatchesAndTheEvaluationSetUseTheirParts) {
    // Training part all 'a', validation part all 'b': the part a window came from
    // shows in every byte.
    std::vector<uint8_t> file(1000, 'a');
    std::fill(file.begin() + std::ptrdiff_t(text_split_point(file.size())), file.end(), 'b');
    const auto task = text_task(write_file("parts.txt", file));
    BatchData data(8, 32);
    data.fill(*task, 3, 0);
    for (const int32_t t : data.inputs) ASSERT_EQ(t, 'a');
    for (const int32_t t : data.targets) ASSERT_EQ(t, 'a');

    // A model that records what it is shown and reports a loss of 3 ln 2 nats.
    class Recorder final : public Model {
      public:
        explicit Recorder(const ModelConfig& cfg) : Model(cfg, 4) { allocate_params(); }
        LossResult forward(const Batch& b) override {
            seen.insert(seen.end(), b.inputs, b.inputs + size_t(b.B) * b.T);
            seen.insert(seen.end(), b.targets, b.targets + size_t(b.B) * b.T);
            return {3.0 * std::log(2.0), long(b.B) * b.T, 0};
        }
        void backward(const Batch&) override {}
        size_t activation_bytes() const override { return 0; }
        std::vector<int32_t> seen;
    };
    ModelConfig mc;
    mc.vocab = 256, mc.context = 32;
    Recorder model(mc);
    const EvalSet eval(*task, 7, 10, 32);
    const EvalResult r = eval.evaluate(model);
    ASSERT_EQ(model.seen.size(), 2u * 10 * 32);
    for (const int32_t t : model.seen)
        ASSERT_EQ(t, 'b') << "evaluation must read the validation part";
    ASSERT_TRUE(r.bits_per_byte.has_value());
    EXPECT_NEAR(*r.bits_per_byte, 3.0, 1e-12);
    EXPECT_EQ(r.counted, 10 * 32);
}

TEST(TextTask, FileErrorsNameTheFileAndTheProblem) {
    const std::string missing = temp_path("does-not-exist.txt");
    fs::remove(missing);
    std::string e = error_of([&] { text_task(missing); });
    EXPECT_NE(e.find("task.path"), std::string::npos) << e;
    EXPECT_NE(e.find(missing), std::string::npos) << e;
    EXPECT_NE(e.find("No such file"), std::string::npos) << e;

    const std::string empty = write_file("empty.txt", {});
    e = error_of([&] { text_task(empty); });
    EXPECT_NE(e.find(empty), std::string::npos) << e;
    EXPECT_NE(e.find("empty"), std::string::npos) << e;

    const std::string folder = temp_path("folder");
    fs::create_directories(folder);
    e = error_of([&] { text_task(folder); });
    EXPECT_NE(e.find("folder"), std::string::npos) << e;

    e = error_of([&] { text_task(""); });
    EXPECT_NE(e.find("task.path"), std::string::npos) << e;

    // 100 bytes: the validation part holds 10, one window of T = 9; T = 10 is too long
    // for every path that draws windows.
    const std::string short_file = write_file("short.txt", std::vector<uint8_t>(100, 'x'));
    const auto task = text_task(short_file);
    EXPECT_NO_THROW(sample_window(*task, 1, 0, 9));
    EXPECT_NO_THROW(sample_window(task->eval_task(), 1, 0, 9));
    e = error_of([&] { sample_window(*task, 1, 0, 10); });
    EXPECT_NE(e.find(short_file), std::string::npos) << e;
    EXPECT_NE(e.find("too short"), std::string::npos) << e;
    EXPECT_NE(e.find("110 bytes"), std::string::npos) << e;  // the size that would do
    BatchData data(2, 10);
    EXPECT_THROW(data.fill(*task, 1, 0), Error);
    EXPECT_THROW(EvalSet(*task, 1, 4, 10), Error);

    if (!fs::exists(TaskConfig{}.path)) {  // the default corpus: the error says how to make it
        e = error_of([&] { text_task(TaskConfig{}.path); });
        EXPECT_NE(e.find("make corpus"), std::string::npos) << e;
    }
}

TEST(TextTask, PathKeyRoundTripsThroughToml) {
    RunConfig c;
    apply_setting(c, "task.name=text");
    c.task.path = "/tmp/a \"quoted\" name\\with backslash.txt";
    RunConfig d;
    apply_toml(d, to_toml(c), "round trip");
    EXPECT_EQ(d.task.path, c.task.path);
    EXPECT_EQ(d.task.name, "text");
}

// ---------------------------------------------------------------------------
// Generation

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
    cis.cis_maps = {"qkv", "proj", "fc", "ffn_proj"};
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
