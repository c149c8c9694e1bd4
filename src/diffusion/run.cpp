// Diffusion run configuration, loading and the sample-based evaluation.
#include "diffusion/run.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "core/error.h"
#include "core/png.h"
#include "data/fmnist.h"
#include "diffusion/classifier.h"
#include "diffusion/sampler.h"
#include "report/fid.h"

namespace attnlab {

bool is_diffusion(const RunConfig& cfg) {
    return cfg.model.arch == Arch::uvit || cfg.task.name == "fmnist";
}

void resolve_diffusion(RunConfig& cfg) {
    ModelConfig& m = cfg.model;
    if (m.arch != Arch::uvit || cfg.task.name != "fmnist")
        throw Error("model.arch = '" + arch_name(m.arch) + "' with task.name = '" + cfg.task.name +
                    "': the diffusion model uvit trains on the images of task fmnist, and fmnist "
                    "is only for uvit");
    m.vocab = int(fashion_mnist_classes().size());
    m.image = fashion_mnist_image_side(cfg.task.images);
    if (m.image % m.patch != 0)
        throw Error("model.patch = " + std::to_string(m.patch) +
                    " does not divide the image side " + std::to_string(m.image));
    m.context = uvit_tokens(m);
    m.attention = resolve_attention("model.attention", cfg.attention, m.layers);
    if (cfg.train.warmup > cfg.train.steps)
        throw Error("train.warmup = " + std::to_string(cfg.train.warmup) +
                    " exceeds train.steps = " + std::to_string(cfg.train.steps));
    if (cfg.diffusion.guidance != 1.0f && cfg.train.batch < 2)
        throw Error(
            "diffusion.guidance != 1 samples with and without the class in one batch: "
            "train.batch must be >= 2");
    validate(m);
}

LoadedDiffusionRun load_diffusion_run(const std::string& dir, int max_batch) {
    LoadedDiffusionRun r;
    if (!std::filesystem::exists(dir + "/config.toml"))
        throw Error("'" + dir + "' is not a run folder (no config.toml)");
    apply_toml_file(r.cfg, dir + "/config.toml");
    if (!is_diffusion(r.cfg))
        throw Error("'" + dir + "' is a run of model.arch = '" + arch_name(r.cfg.model.arch) +
                    "', not a diffusion (uvit) run");
    resolve_diffusion(r.cfg);
    r.model = std::make_unique<UViT>(r.cfg.model, max_batch > 0 ? max_batch : r.cfg.train.batch);
    load_uvit(*r.model, dir + "/model.safetensors");
    return r;
}

SampleEval evaluate_samples(UViT& model, const RunConfig& cfg, const std::string& grid_path,
                            bool quiet) {
    const DiffusionConfig& d = cfg.diffusion;
    const int K = model.config().vocab, n = d.eval_samples, npx = model.pixels();
    SampleEval e;
    e.samples = n;
    FeatureNet net(npx, K, 256);
    e.classifier_accuracy =
        load_or_train_classifier(net, d.classifier, cfg.task.images, quiet).test_accuracy;
    std::vector<int32_t> classes(static_cast<size_t>(n));
    for (int i = 0; i < n; i++) classes[size_t(i)] = i % K;
    SampleOptions so;
    so.steps = d.sample_steps, so.guidance = d.guidance, so.seed = cfg.train.eval_seed;
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<float> images = sample_images(model, NoiseSchedule::linear(), classes, so);
    e.sample_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<float> gen_features, test_features;
    std::vector<int32_t> predicted, test_predicted;
    classify(net, images.data(), n, gen_features, predicted);
    const ImageSet test = load_fashion_mnist(cfg.task.images, Split::test);
    const std::vector<float> test_x = images_to_unit(test);
    classify(net, test_x.data(), test.n, test_features, test_predicted);
    const int dim = FeatureNet::kHidden2;
    e.fid = frechet_distance(fit_gaussian(gen_features.data(), n, dim),
                             fit_gaussian(test_features.data(), test.n, dim));
    std::vector<long> right(static_cast<size_t>(K)), total(static_cast<size_t>(K));
    for (int i = 0; i < n; i++) {
        total[size_t(classes[size_t(i)])]++;
        right[size_t(classes[size_t(i)])] += predicted[size_t(i)] == classes[size_t(i)];
    }
    long all_right = 0;
    for (int k = 0; k < K; k++) {
        e.class_accuracy.push_back(total[size_t(k)] ? double(right[size_t(k)]) / total[size_t(k)]
                                                    : 0.0);
        all_right += right[size_t(k)];
    }
    e.sample_accuracy = double(all_right) / n;
    if (!grid_path.empty()) {  // the first ten images of each class: one row per class
        const int per_class = std::min(10, n / K), S = model.config().image;
        const std::vector<uint8_t> bytes = to_bytes(images);
        std::vector<uint8_t> cells(size_t(K) * per_class * npx);
        for (int k = 0; k < K; k++)
            for (int j = 0; j < per_class; j++)
                std::copy_n(bytes.begin() + ptrdiff_t(j * K + k) * npx, npx,
                            cells.begin() + ptrdiff_t(k * per_class + j) * npx);
        int w = 0, h = 0;
        const auto grid = tile_grid(cells.data(), K * per_class, S, S, per_class, 2, 0, w, h);
        write_png_grey(grid_path, grid.data(), w, h);
    }
    return e;
}

std::string format_sample_eval(const SampleEval& e) {
    std::string s =
        fmt::format("FID (attnlab Fashion-MNIST features) {:.2f}  (lower is better; {} samples)\n",
                    e.fid, e.samples);
    s += fmt::format(
        "sample accuracy {:.2f}%  (the classifier, {:.2f}% on the test set, names the "
        "intended class)\n",
        100 * e.sample_accuracy, 100 * e.classifier_accuracy);
    const auto& names = fashion_mnist_classes();
    for (size_t k = 0; k < e.class_accuracy.size(); k++)
        s += fmt::format("  {:<12} {:6.1f}%\n", k < names.size() ? names[k] : std::to_string(k),
                         100 * e.class_accuracy[k]);
    return s + fmt::format("sampling took {:.1f} s\n", e.sample_s);
}

}  // namespace attnlab
