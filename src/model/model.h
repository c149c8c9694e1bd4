// The model interface the trainer, evaluator, gradcheck and benchmarks drive:
// a parameter arena (params, grads), forward to a masked loss, backward that
// adds into the gradients. Every architecture implements it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "core/arena.h"
#include "kernels/loss.h"
#include "model/config.h"

namespace attnlab {

// One batch of B windows of length T: inputs and targets (B, T), counted (B, T).
struct Batch {
    const int32_t* inputs = nullptr;
    const int32_t* targets = nullptr;
    const uint8_t* counted = nullptr;
    int B = 0, T = 0;
};

class Model {
  public:
    virtual ~Model() = default;

    const ModelConfig& config() const { return cfg_; }
    const ParamTable& table() const { return table_; }
    Buffer& params() { return params_; }
    const Buffer& params() const { return params_; }
    Buffer& grads() { return grads_; }
    int max_batch() const { return max_batch_; }

    // Draws all parameters from the arena table's init rules with Rng(seed).
    void init_params(uint64_t seed);
    void zero_grad() { grads_.zero(); }

    // Logits, probabilities and the masked loss of a batch (B <= max_batch, T <= context).
    virtual LossResult forward(const Batch& batch) = 0;
    // Adds dL/dparams of the last forward's batch into grads().
    virtual void backward(const Batch& batch) = 0;

    // Of the last forward: logits (B, T, V), per-position correctness and loss (B, T).
    const float* logits() const { return logits_; }
    const uint8_t* correct() const { return correct_.data(); }
    const float* row_loss() const { return row_loss_; }

    // Attention weights (B, H, T, T) of layer l in the last forward; nullptr for
    // architectures without attention.
    virtual const float* attention_weights(int layer) const { return nullptr; }

    // Bytes of parameters + gradients + moments, and of activations, as allocated.
    size_t param_bytes() const { return params_.size() * sizeof(float); }
    virtual size_t activation_bytes() const = 0;

  protected:
    Model(const ModelConfig& cfg, int max_batch) : cfg_(cfg), max_batch_(max_batch) {}
    // Called by subclasses once the table is complete.
    void allocate_params();

    ModelConfig cfg_;
    int max_batch_;
    ParamTable table_;
    Buffer params_, grads_;
    float* logits_ = nullptr;
    float* row_loss_ = nullptr;
    std::vector<uint8_t> correct_;
};

// Draws every tensor of `table` into `params` by its init rule with Rng(seed);
// `layers` scales the residual init (Model::init_params and the U-ViT share it).
void init_table_params(const ParamTable& table, Buffer& params, uint64_t seed, int layers);
// Checkpoints of any parameter arena (save_params/load_params below delegate here).
void save_table_params(const ModelConfig& cfg, const ParamTable& table, const Buffer& params,
                       const std::string& path,
                       const std::vector<std::pair<std::string, std::string>>& extra_metadata = {});
void load_table_params(const ParamTable& table, Buffer& params, const std::string& path);

// Validates cfg and builds the architecture it names, sized for (max_batch, cfg.context).
std::unique_ptr<Model> make_model(const ModelConfig& cfg, int max_batch);

// Loads parameters from a checkpoint, checking every name and shape against the
// model; throws Error naming the file and the first mismatch.
void load_params(Model& model, const std::string& path);
// Writes the parameters as a safetensors checkpoint (metadata: format, kind=params,
// model JSON, plus `extra_metadata`), atomically.
void save_params(const Model& model, const std::string& path,
                 const std::vector<std::pair<std::string, std::string>>& extra_metadata = {});

}  // namespace attnlab
