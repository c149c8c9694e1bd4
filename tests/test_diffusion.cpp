// Diffusion: the noise schedule and DDIM step against their closed forms, the
// Frechet distance against closed forms on Gaussians, the U-ViT's backward
// (accumulation) and class conditioning, deterministic sampling, and a tiny
// end-to-end diffusion run on generated IDX files (train, resume, evaluate).
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "core/gemm.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "diffusion/classifier.h"
#include "diffusion/run.h"
#include "diffusion/sampler.h"
#include "diffusion/schedule.h"
#include "model/uvit.h"
#include "report/diffusion_report.h"
#include "report/fid.h"
#include "sweep/sweep.h"

using namespace attnlab;
namespace fs = std::filesystem;

TEST(Schedule, LinearBetasGiveTheKnownAlphaBar) {
    const NoiseSchedule s = NoiseSchedule::linear();
    ASSERT_EQ(s.alpha_bar.size(), 1000u);
    EXPECT_NEAR(s.alpha_bar[0], 1 - 1e-4, 1e-12);
    EXPECT_NEAR(s.alpha_bar[1], (1 - 1e-4) * (1 - (1e-4 + 0.0199 / 999)), 1e-12);
    EXPECT_NEAR(s.alpha_bar[999], 4.04e-5, 0.05e-5);  // prod (1 - beta_t), a standard figure
    for (size_t t = 1; t < 1000; t++) EXPECT_LT(s.alpha_bar[t], s.alpha_bar[t - 1]);
}

TEST(Schedule, DdimLevelsRunFromTheTopToZero) {
    const NoiseSchedule s = NoiseSchedule::linear();
    const auto ts = s.ddim_levels(50);
    ASSERT_EQ(ts.size(), 50u);
    EXPECT_EQ(ts.front(), 999);
    EXPECT_EQ(ts.back(), 0);
    for (size_t i = 1; i < ts.size(); i++) EXPECT_LT(ts[i], ts[i - 1]);
    EXPECT_EQ(s.ddim_levels(1), std::vector<int>{999});
    EXPECT_THROW(s.ddim_levels(0), Error);
    EXPECT_THROW(s.ddim_levels(1001), Error);
}

TEST(Schedule, DdimStepWithTheTrueNoiseLandsOnTheForwardProcess) {
    const NoiseSchedule s = NoiseSchedule::linear();
    Rng rng(3);
    const int n = 50;
    std::vector<float> x0(n), eps(n), x(n), expect(n);
    for (int i = 0; i < n; i++)
        x0[i] = float(0.9 * (2 * rng.uniform() - 1)), eps[i] = float(rng.normal());
    s.add_noise(x.data(), x0.data(), eps.data(), 700, n);
    s.ddim_step(x.data(), eps.data(), 700, 300, n);  // x_300 = sqrt(abar) x0 + sqrt(1 - abar) eps
    s.add_noise(expect.data(), x0.data(), eps.data(), 300, n);
    for (int i = 0; i < n; i++) EXPECT_NEAR(x[i], expect[i], 2e-5);
    s.ddim_step(x.data(), eps.data(), 300, -1, n);  // the last step returns x0
    for (int i = 0; i < n; i++) EXPECT_NEAR(x[i], x0[i], 2e-5);
}

TEST(Fid, SymmetricEigenReconstructsTheMatrix) {
    Rng rng(4);
    const int n = 7;
    std::vector<double> A(n * n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) A[i * n + j] = A[j * n + i] = rng.normal();
    std::vector<double> l, V;
    symmetric_eigen(A, n, l, V);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += V[i * n + k] * l[k] * V[j * n + k];
            EXPECT_NEAR(s, A[i * n + j], 1e-10);
        }
}

// Closed forms: FD(N(m1, S1), N(m2, S2)) = |m1 - m2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).
TEST(Fid, MatchesTheClosedFormOnGaussians) {
    const int d = 3;
    Gaussian a, b;
    a.d = b.d = d;
    a.mean = {1, 2, 3}, b.mean = {1, 0, 3};
    a.cov = {4, 0, 0, 0, 1, 0, 0, 0, 9};
    b.cov = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    // diagonal: sum (a + b - 2 sqrt(a b)) = (4+1-4) + (1+1-2) + (9+1-6) = 5, plus |dm|^2 = 4
    EXPECT_NEAR(frechet_distance(a, b), 9.0, 1e-9);
    EXPECT_NEAR(frechet_distance(a, a), 0.0, 1e-9);
    // S2 = R diag(4, 9, 1) R^T (a rotation) against S1 = I: Tr(I + S2 - 2 S2^(1/2)) = (1+4-4) +
    // (1+9-6) + 0 = 5
    const double c = std::cos(0.7), s = std::sin(0.7);
    const double R[3][3] = {{c, -s, 0}, {s, c, 0}, {0, 0, 1}}, D[3] = {4, 9, 1};
    Gaussian e, f;
    e.d = f.d = d;
    e.mean = f.mean = {0, 0, 0};
    e.cov = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    f.cov.assign(9, 0);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 3; k++) f.cov[i * 3 + j] += R[i][k] * D[k] * R[j][k];
    EXPECT_NEAR(frechet_distance(e, f), 5.0, 1e-9);
    EXPECT_NEAR(frechet_distance(f, e), 5.0, 1e-9);
}

TEST(Fid, SampleEstimateConvergesToTheClosedForm) {
    Rng rng(5);
    const int n = 20000, d = 2;
    std::vector<float> x(n * d), y(n * d);
    for (int i = 0; i < n; i++) {
        x[i * d] = float(rng.normal()), x[i * d + 1] = float(rng.normal());
        y[i * d] = float(1 + 2 * rng.normal()), y[i * d + 1] = float(rng.normal());
    }
    // |dm|^2 = 1; Tr = (1 + 4 - 4) + 0 = 1
    EXPECT_NEAR(frechet_distance(fit_gaussian(x.data(), n, d), fit_gaussian(y.data(), n, d)), 2.0,
                0.1);
}

namespace {

ModelConfig tiny_uvit(const std::string& attention = "cogformer") {
    ModelConfig c;
    c.arch = Arch::uvit, c.vocab = 3, c.image = 4, c.patch = 2, c.dim = 8, c.heads = 2,
    c.layers = 3;
    c.ffn_mult = 2, c.context = uvit_tokens(c);
    c.attention = resolve_attention("model.attention", attention, c.layers);
    return c;
}

}  // namespace

// A cached classifier whose metadata is not a number is refused by name (it was read
// with bare stod/stoi, which said only "stod").
TEST(Classifier, CorruptCachedMetadataIsNamed) {
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("attnlab-classifier-" + std::to_string(::getpid()) + ".safetensors"))
                                 .string();
    FeatureNet net(28 * 28, 10, 4);
    const std::vector<float> zeros(net.params().size(), 0.0f);
    // Writes a cache of the right kind and tensors, with `key` set to `value`.
    auto load_with = [&](const std::string& key, const std::string& value) {
        SafeTensorsWriter w;
        w.set_metadata("kind", "fmnist-classifier");
        w.set_metadata("test_accuracy", "0.891900");
        w.set_metadata("epochs", "8");
        w.set_metadata("seed", "2017");
        w.set_metadata(key, value);
        for (const auto& e : net.table().entries())
            w.add_f32(e.name, e.shape, zeros.data() + e.offset);
        w.write(path);
        return load_or_train_classifier(net, path, "/nonexistent", true);
    };
    for (const auto& [key, value, field] :
         {std::tuple{"test_accuracy", "0.9q", "test_accuracy is '0.9q', not a finite number"},
          std::tuple{"epochs", "-3", "epochs is '-3', not a non-negative integer"},
          std::tuple{"seed", "12x", "seed is '12x', not a non-negative integer"}}) {
        try {
            load_with(key, value);
            ADD_FAILURE() << "no error for " << key;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("'" + path + "': the metadata " + field),
                      std::string::npos)
                << e.what();
        }
    }
    const ClassifierInfo ok = load_with("format", "attnlab-1");
    EXPECT_DOUBLE_EQ(ok.test_accuracy, 0.8919);
    EXPECT_EQ(ok.epochs, 8);
    EXPECT_EQ(ok.seed, 2017u);
    std::filesystem::remove(path);
}

TEST(UViT, BackwardTwiceGivesTwiceTheGradient) {
    UViT m(tiny_uvit(), 2);
    m.init_params(1);
    for (size_t i = 0; i < m.params().size(); i++) m.params()[i] *= 10;
    Rng rng(6);
    std::vector<float> x(2 * 16), eps(x.size());
    for (auto& v : x) v = float(rng.normal());
    for (auto& v : eps) v = float(rng.normal());
    const std::vector<int32_t> t{5, 900}, y{0, 3};
    const ImageBatch b{x.data(), t.data(), y.data(), eps.data(), 2};
    m.zero_grad();
    m.forward(b);
    m.backward(b);
    const std::vector<float> once(m.grads().data(), m.grads().data() + m.grads().size());
    m.forward(b);
    m.backward(b);
    double norm = 0;
    for (size_t i = 0; i < once.size(); i++) {
        EXPECT_NEAR(m.grads()[i], 2 * once[i], 1e-6 + 1e-5 * std::fabs(once[i]));
        norm += once[i] * once[i];
    }
    EXPECT_GT(norm, 0);
}

TEST(UViT, ClassAndLevelChangeThePrediction) {
    UViT m(tiny_uvit("softmax"), 3);
    m.init_params(2);
    for (size_t i = 0; i < m.params().size(); i++) m.params()[i] *= 10;
    std::vector<float> x(3 * 16, 0.5f);
    const std::vector<int32_t> t{10, 10, 500}, y{0, 1, 0};
    m.forward({x.data(), t.data(), y.data(), nullptr, 3});
    const float* p = m.prediction();
    double d_class = 0, d_level = 0;
    for (int i = 0; i < 16; i++)
        d_class += std::fabs(p[i] - p[16 + i]), d_level += std::fabs(p[i] - p[32 + i]);
    EXPECT_GT(d_class, 1e-3);
    EXPECT_GT(d_level, 1e-3);
    const std::vector<int32_t> bad{0, 4, 0};  // 3 classes: 3 = none, 4 is out of range
    EXPECT_THROW(m.forward({x.data(), t.data(), bad.data(), nullptr, 3}), Error);
}

TEST(Sampler, SameSeedSameImagesWhateverTheBatch) {
    UViT small(tiny_uvit(), 2), large(tiny_uvit(), 8);
    small.init_params(3);
    large.init_params(3);
    const std::vector<int32_t> classes{0, 1, 2, 3, 1};
    SampleOptions o;
    o.steps = 4, o.guidance = 1.5f, o.seed = 9;
    const auto a = sample_images(small, NoiseSchedule::linear(), classes, o);
    const auto b = sample_images(large, NoiseSchedule::linear(), classes, o);
    ASSERT_EQ(a.size(), 5u * 16);
    for (size_t i = 0; i < a.size(); i++) EXPECT_NEAR(a[i], b[i], 1e-5);
    o.seed = 10;
    EXPECT_NE(sample_images(small, NoiseSchedule::linear(), classes, o), a);
}

namespace {

void write_idx_gz(const fs::path& p, uint32_t magic, std::vector<uint32_t> dims,
                  const std::vector<uint8_t>& data) {
    std::vector<uint8_t> bytes;
    auto be = [&](uint32_t x) {
        for (int s = 24; s >= 0; s -= 8) bytes.push_back(uint8_t(x >> s));
    };
    be(magic);
    for (auto d : dims) be(d);
    bytes.insert(bytes.end(), data.begin(), data.end());
    gzFile f = gzopen(p.c_str(), "wb");
    gzwrite(f, bytes.data(), unsigned(bytes.size()));
    gzclose(f);
}

// A tiny Fashion-MNIST stand-in: 8x8 images, class k a bright bar at row k % 8.
void write_tiny_fmnist(const fs::path& dir) {
    fs::create_directories(dir);
    for (auto [prefix, n] : {std::pair<const char*, int>{"train", 40}, {"t10k", 20}}) {
        std::vector<uint8_t> px(size_t(n) * 64), labels(static_cast<size_t>(n));
        Rng rng(n);
        for (int i = 0; i < n; i++) {
            labels[size_t(i)] = uint8_t(i % 10);
            for (int p = 0; p < 64; p++)
                px[size_t(i) * 64 + p] =
                    uint8_t(p / 8 == i % 8 ? 200 + rng.below(50) : rng.below(40));
        }
        write_idx_gz(dir / (std::string(prefix) + "-images-idx3-ubyte.gz"), 0x803,
                     {uint32_t(n), 8, 8}, px);
        write_idx_gz(dir / (std::string(prefix) + "-labels-idx1-ubyte.gz"), 0x801, {uint32_t(n)},
                     labels);
    }
}

RunConfig tiny_run(const fs::path& data) {
    RunConfig c;
    for (const char* s :
         {"model.arch=uvit", "model.attention=cogformer", "model.layers=3", "model.dim=8",
          "model.heads=2", "model.ffn_mult=2", "model.patch=4", "task.name=fmnist", "train.steps=6",
          "train.batch=4", "train.warmup=1", "train.eval_every=3", "train.eval_windows=8",
          "train.log_every=1", "train.threads=1", "diffusion.eval_samples=20",
          "diffusion.sample_steps=2"})
        apply_setting(c, s);
    apply_setting(c, "task.images", data.string());
    apply_setting(c, "diffusion.classifier", (data / "classifier.safetensors").string());
    return c;
}

std::vector<char> file_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

TEST(DiffusionRun, TrainsEvaluatesAndResumesExactly) {
    const fs::path root =
        fs::temp_directory_path() / ("attnlab-diffusion-" + std::to_string(::getpid()));
    write_tiny_fmnist(root / "data");
    TrainOptions opt;
    opt.quiet = true;
    opt.out_dir = (root / "full").string();
    const DiffusionSummary full = diffusion_train_new(tiny_run(root / "data"), opt);
    EXPECT_EQ(full.steps, 6);
    EXPECT_TRUE(std::isfinite(full.eval.fid) && full.eval.fid >= 0) << full.eval.fid;
    EXPECT_EQ(full.eval.samples, 20);
    EXPECT_TRUE(fs::exists(root / "full" / "samples.png"));
    EXPECT_TRUE(fs::exists(root / "data" / "classifier.safetensors"));
    std::ifstream in(root / "full" / "summary.json");
    const auto j = nlohmann::json::parse(in);
    EXPECT_EQ(j.at("fid").get<double>(), full.eval.fid);
    EXPECT_EQ(j.at("eval_per_task").size(), 10u);
    // Interrupted after 3 steps and resumed: the same parameters, bit for bit.
    opt.out_dir = (root / "split").string();
    opt.stop_after = 3;
    diffusion_train_new(tiny_run(root / "data"), opt);
    EXPECT_FALSE(fs::exists(root / "split" / "summary.json"));
    opt.stop_after.reset();
    diffusion_train_resume((root / "split").string(), {}, opt);
    LoadedDiffusionRun a = load_diffusion_run((root / "full").string(), 4);
    LoadedDiffusionRun b = load_diffusion_run((root / "split").string(), 4);
    ASSERT_EQ(a.model->params().size(), b.model->params().size());
    for (size_t i = 0; i < a.model->params().size(); i++)
        ASSERT_EQ(a.model->params()[i], b.model->params()[i]) << i;
    EXPECT_EQ(file_bytes(root / "full" / "samples.png"),
              file_bytes(root / "split" / "samples.png"));
    // A sweep's runs.csv has the FID beside the sample accuracy and the loss.
    const auto result = read_run_result((root / "full").string());
    ASSERT_TRUE(result && result->fid);
    EXPECT_EQ(*result->fid, full.eval.fid);
    SweepPlan plan;
    plan.runs.push_back({"full", {}, {}, {}});
    const std::string csv = runs_csv(plan, {result});
    EXPECT_EQ(csv.rfind("run,accuracy,loss,fid,accuracy_T-shirt/top,", 0), 0u) << csv;
    EXPECT_NE(csv.find(fmt::format(",{:.4f},", full.eval.fid)), std::string::npos) << csv;
    // The sweep report's section: a row per finished diffusion run, its grid embedded.
    const DiffusionSection sec =
        diffusion_section(root.string(), {{"full", "seed 1"}, {"absent", "x"}});
    EXPECT_NE(sec.markdown.find("| full | seed 1 |"), std::string::npos) << sec.markdown;
    EXPECT_EQ(sec.markdown.find("absent"), std::string::npos);
    EXPECT_NE(sec.html.find("data:image/png;base64,iVBORw0KGgo"),
              std::string::npos);  // the PNG signature
    // A token task with the uvit, or the image task with a transformer, is refused by name.
    RunConfig wrong = tiny_run(root / "data");
    apply_setting(wrong, "task.name=iarc");
    EXPECT_THROW(resolve_diffusion(wrong), Error);
    fs::remove_all(root);
}
