// The U-ViT (Bao et al., "All are Worth Words: A ViT Backbone for Diffusion
// Models", 2023): a transformer that predicts the noise in an image. Tokens are
// [time, class, patches] with learned positions; (L-1)/2 in-blocks, a mid-block
// and (L-1)/2 out-blocks, each out-block first mixing in the matching in-block's
// output through a long skip (concatenate, then a linear map back to width);
// a final norm and a linear map back to pixels. Attention is bidirectional and
// its map is chosen per block (cogformer: softmax in the first in-block and the
// last out-block, cog between). Same arena, kernels and conventions as Model.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "core/arena.h"
#include "model/config.h"

namespace attnlab {

// B grey images of S x S pixels (S = cfg.image), S*S floats each.
struct ImageBatch {
    const float* x = nullptr;       // (B, S*S) noisy images
    const int32_t* t = nullptr;     // (B) noise levels, >= 0
    const int32_t* y = nullptr;     // (B) classes 0..K-1, or K (= cfg.vocab): no class
    const float* target = nullptr;  // (B, S*S) the noise to predict; nullptr: no loss
    int B = 0;
};

class UViT {
  public:
    // cfg.arch must be uvit; cfg.vocab = K classes, cfg.context = uvit_tokens(cfg).
    UViT(const ModelConfig& cfg, int max_batch);
    ~UViT();
    UViT(const UViT&) = delete;
    UViT& operator=(const UViT&) = delete;

    const ModelConfig& config() const { return cfg_; }
    const ParamTable& table() const { return table_; }
    Buffer& params() { return params_; }
    const Buffer& params() const { return params_; }
    Buffer& grads() { return grads_; }
    int max_batch() const { return max_batch_; }
    int pixels() const { return cfg_.image * cfg_.image; }

    void init_params(uint64_t seed);
    void zero_grad() { grads_.zero(); }

    // The predicted noise of every image (prediction()); returns the mean squared
    // error against batch.target over all pixels, or 0 without a target.
    double forward(const ImageBatch& batch);
    // Adds dL/dparams of the last forward's MSE into grads() (needs a target).
    void backward(const ImageBatch& batch);

    const float* prediction() const;                  // (B, S*S) of the last forward
    const float* attention_weights(int block) const;  // (B, H, T, T) of the last forward
    size_t activation_bytes() const;

  private:
    struct Impl;
    ModelConfig cfg_;
    int max_batch_;
    ParamTable table_;
    Buffer params_, grads_;
    std::unique_ptr<Impl> impl_;
};

// Loads a U-ViT checkpoint's parameters into `model` (names and shapes checked).
void load_uvit(UViT& model, const std::string& path);

}  // namespace attnlab
