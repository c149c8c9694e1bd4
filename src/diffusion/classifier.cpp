// The MLP classifier pixels -> 256 -> 128 -> classes with GELU, trained with
// AdamW on shuffled mini-batches.
#include "diffusion/classifier.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/parse_number.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "kernels/activation.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "model/model.h"
#include "train/optimizer.h"

namespace attnlab {

FeatureNet::FeatureNet(int pixels, int classes, int max_batch)
    : pixels_(pixels), classes_(classes), max_batch_(max_batch) {
    w1_ = table_.add("fc1.weight", {kHidden1, pixels}, Init::normal);
    b1_ = table_.add("fc1.bias", {kHidden1}, Init::zeros);
    w2_ = table_.add("fc2.weight", {kHidden2, kHidden1}, Init::normal);
    b2_ = table_.add("fc2.bias", {kHidden2}, Init::zeros);
    w3_ = table_.add("head.weight", {classes, kHidden2}, Init::normal);
    b3_ = table_.add("head.bias", {classes}, Init::zeros);
    params_.resize(table_.total());
    grads_.resize(table_.total());
    const size_t B = size_t(max_batch);
    h1_.resize(B * kHidden1), h1a_.resize(B * kHidden1), d1_.resize(B * kHidden1);
    h2_.resize(B * kHidden2), h2a_.resize(B * kHidden2), d2_.resize(B * kHidden2);
    logits_.resize(B * classes), probs_.resize(B * classes), dlogits_.resize(B * classes);
    row_loss_.resize(B);
    correct_.assign(B, 0), counted_.assign(B, 1);
}

double FeatureNet::forward(const float* x, int B, const int32_t* labels) {
    if (B < 1 || B > max_batch_)
        throw Error("classifier batch of " + std::to_string(B) + " images");
    const float* P = params_.data();
    linear_forward(h1_.data(), x, P + w1_, P + b1_, B, pixels_, kHidden1);
    gelu_forward(h1a_.data(), h1_.data(), long(B) * kHidden1);
    linear_forward(h2_.data(), h1a_.data(), P + w2_, P + b2_, B, kHidden1, kHidden2);
    gelu_forward(h2a_.data(), h2_.data(), long(B) * kHidden2);
    linear_forward(logits_.data(), h2a_.data(), P + w3_, P + b3_, B, kHidden2, classes_);
    if (!labels) return 0;
    return cross_entropy_forward(probs_.data(), row_loss_.data(), correct_.data(), logits_.data(),
                                 labels, counted_.data(), B, classes_)
        .loss;
}

void FeatureNet::backward(const float* x, int B, const int32_t* labels) {
    const float* P = params_.data();
    float* G = grads_.data();
    const GradStore w = GradStore::overwrite;
    cross_entropy_backward(dlogits_.data(), probs_.data(), labels, counted_.data(), B, B, classes_,
                           w);
    linear_backward(d2_.data(), G + w3_, G + b3_, dlogits_.data(), h2a_.data(), P + w3_, B,
                    kHidden2, classes_, w);
    gelu_backward(d2_.data(), d2_.data(), h2_.data(), long(B) * kHidden2, w);
    linear_backward(d1_.data(), G + w2_, G + b2_, d2_.data(), h1a_.data(), P + w2_, B, kHidden1,
                    kHidden2, w);
    gelu_backward(d1_.data(), d1_.data(), h1_.data(), long(B) * kHidden1, w);
    linear_backward(nullptr, G + w1_, G + b1_, d1_.data(), x, P + w1_, B, pixels_, kHidden1, w);
}

std::vector<float> images_to_unit(const ImageSet& set) {
    std::vector<float> out(set.pixels.size());
    for (size_t i = 0; i < out.size(); i++) out[i] = float(set.pixels[i]) / 127.5f - 1.0f;
    return out;
}

void classify(FeatureNet& net, const float* images, int n, std::vector<float>& features,
              std::vector<int32_t>& predicted) {
    const int d = FeatureNet::kHidden2, K = net.classes();
    features.resize(size_t(n) * d);
    predicted.resize(size_t(n));
    for (int i0 = 0; i0 < n; i0 += net.max_batch()) {
        const int b = std::min(net.max_batch(), n - i0);
        net.forward(images + size_t(i0) * net.pixels(), b);
        std::copy_n(net.features(), size_t(b) * d, features.begin() + ptrdiff_t(i0) * d);
        for (int i = 0; i < b; i++) {
            const float* l = net.logits() + size_t(i) * K;
            predicted[size_t(i0 + i)] = int32_t(std::max_element(l, l + K) - l);
        }
    }
}

ClassifierInfo train_classifier(FeatureNet& net, const ImageSet& train, const ImageSet& test,
                                int epochs, uint64_t seed, bool quiet) {
    const int B = std::min(net.max_batch(), train.n), npx = net.pixels(),
              steps_per_epoch = train.n / B;
    const std::vector<float> xs = images_to_unit(train);
    AdamWConfig cfg;
    cfg.lr = 2e-3f, cfg.weight_decay = 0.05f, cfg.warmup = 100, cfg.clip = 1.0f;
    cfg.total_steps = epochs * steps_per_epoch;
    Optimizer opt(cfg, net.params().size());
    init_table_params(net.table(), net.params(), seed, 1);
    std::vector<int> order(size_t(train.n));
    std::vector<float> x(size_t(B) * npx);
    std::vector<int32_t> y(static_cast<size_t>(B));
    Rng rng(seed + 1);
    for (int e = 0; e < epochs; e++) {
        for (int i = 0; i < train.n; i++) order[size_t(i)] = i;
        for (int i = train.n - 1; i > 0; i--)
            std::swap(order[size_t(i)], order[rng.below(uint32_t(i + 1))]);
        double loss = 0;
        for (int s = 0; s < steps_per_epoch; s++) {
            for (int i = 0; i < B; i++) {
                const int k = order[size_t(s) * B + i];
                std::copy_n(xs.begin() + ptrdiff_t(k) * npx, npx, x.begin() + ptrdiff_t(i) * npx);
                y[size_t(i)] = train.labels[size_t(k)];
            }
            net.grads().zero();
            loss += net.forward(x.data(), B, y.data());
            net.backward(x.data(), B, y.data());
            opt.step(net.table(), net.params(), net.grads());
        }
        if (!quiet)
            fmt::print(stderr, "classifier epoch {}/{}: loss {:.4f}\n", e + 1, epochs,
                       loss / steps_per_epoch);
    }
    std::vector<float> feats;
    std::vector<int32_t> pred;
    const std::vector<float> xt = images_to_unit(test);
    classify(net, xt.data(), test.n, feats, pred);
    long right = 0;
    for (int i = 0; i < test.n; i++) right += pred[size_t(i)] == test.labels[size_t(i)];
    return ClassifierInfo{double(right) / test.n, epochs, seed};
}

namespace {
constexpr int kClassifierEpochs = 8;
constexpr uint64_t kClassifierSeed = 2017;  // fixed: every run measures with the same network
}  // namespace

ClassifierInfo load_or_train_classifier(FeatureNet& net, const std::string& path,
                                        const std::string& images_dir, bool quiet) {
    if (std::filesystem::exists(path)) {
        SafeTensorsFile f(path);
        if (f.metadata_or("kind", "") != "fmnist-classifier")
            throw Error("'" + path +
                        "' is not an attnlab Fashion-MNIST classifier (metadata kind '" +
                        f.metadata_or("kind", "") + "'); remove it to have it retrained");
        for (const auto& p : net.table().entries()) {
            const float* src = f.f32(p.name, p.shape);
            std::copy(src, src + p.size, net.params().data() + p.offset);
        }
        const std::string where = "'" + path + "': the metadata ";
        return ClassifierInfo{
            parse_number(f.metadata_or("test_accuracy", "0"), where + "test_accuracy"),
            parse_count(f.metadata_or("epochs", "0"), where + "epochs"),
            uint64_t(parse_count(f.metadata_or("seed", "0"), where + "seed"))};
    }
    if (!quiet)
        fmt::print(stderr, "training the FID feature classifier (once; cached at '{}')\n", path);
    const ImageSet train = load_fashion_mnist(images_dir, Split::train);
    const ImageSet test = load_fashion_mnist(images_dir, Split::test);
    const ClassifierInfo info =
        train_classifier(net, train, test, kClassifierEpochs, kClassifierSeed, quiet);
    if (!quiet) fmt::print(stderr, "classifier test accuracy {:.2f}%\n", 100 * info.test_accuracy);
    SafeTensorsWriter w;
    w.set_metadata("format", "attnlab-1");
    w.set_metadata("kind", "fmnist-classifier");
    w.set_metadata("test_accuracy", fmt::format("{:.6f}", info.test_accuracy));
    w.set_metadata("epochs", std::to_string(info.epochs));
    w.set_metadata("seed", std::to_string(info.seed));
    for (const auto& p : net.table().entries())
        w.add_f32(p.name, p.shape, net.params().data() + p.offset);
    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    w.write(path);
    return info;
}

}  // namespace attnlab
