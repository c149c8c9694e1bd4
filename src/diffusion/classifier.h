// The feature network behind the "FID (attnlab Fashion-MNIST features)": an
// MLP classifier of grey images (pixels scaled to [-1, 1]) trained by attnlab
// itself with a fixed seed; its second hidden layer (after GELU) gives the
// features. Trained once and cached as a safetensors file, whose metadata
// records the test accuracy.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/arena.h"
#include "data/fmnist.h"

namespace attnlab {

class FeatureNet {
  public:
    static constexpr int kHidden1 = 256, kHidden2 = 128;  // kHidden2 = the feature dimension

    FeatureNet(int pixels, int classes, int max_batch);
    int pixels() const { return pixels_; }
    int classes() const { return classes_; }
    int max_batch() const { return max_batch_; }
    const ParamTable& table() const { return table_; }
    Buffer& params() { return params_; }
    Buffer& grads() { return grads_; }

    // Forward on B <= max_batch images (B, pixels): features (B, kHidden2) and
    // logits (B, classes); with labels, returns the mean cross-entropy.
    double forward(const float* x, int B, const int32_t* labels = nullptr);
    // Adds dL/dparams of the last forward (with labels) into grads().
    void backward(const float* x, int B, const int32_t* labels);
    const float* features() const { return h2a_.data(); }
    const float* logits() const { return logits_.data(); }

  private:
    int pixels_, classes_, max_batch_;
    ParamTable table_;
    Buffer params_, grads_;
    size_t w1_, b1_, w2_, b2_, w3_, b3_;
    Buffer h1_, h1a_, h2_, h2a_, logits_, probs_, row_loss_, d1_, d2_, dlogits_;
    std::vector<uint8_t> correct_, counted_;
};

// Images as classifier inputs: byte / 127.5 - 1.
std::vector<float> images_to_unit(const ImageSet& set);

struct ClassifierInfo {
    double test_accuracy = 0;  // on the 10,000 test images
    long epochs = 0;
    uint64_t seed = 0;
};

// Trains a FeatureNet on `train` with a fixed seed and measures it on `test`.
ClassifierInfo train_classifier(FeatureNet& net, const ImageSet& train, const ImageSet& test,
                                int epochs, uint64_t seed, bool quiet);

// The classifier cached at `path`; trained on the data in `images_dir` and
// written there (atomically) when the file is missing. Throws Error naming a
// file that exists but does not hold this network.
ClassifierInfo load_or_train_classifier(FeatureNet& net, const std::string& path,
                                        const std::string& images_dir, bool quiet);

// Features (n, kHidden2) and predicted classes (n) of n images (n, pixels) in [-1, 1].
void classify(FeatureNet& net, const float* images, int n, std::vector<float>& features,
              std::vector<int32_t>& predicted);

}  // namespace attnlab
