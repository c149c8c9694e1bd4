// The windowed MLP language model: the embeddings of the last W tokens,
// concatenated -> L hidden layers (linear + GELU) -> linear head, per position.
#include <string>
#include <vector>

#include "kernels/activation.h"
#include "kernels/embedding.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "kernels/window.h"
#include "model/architectures.h"
#include "model/layout.h"

namespace attnlab {

namespace {

struct HiddenRefs {
    size_t w = 0, b = 0;
    int in = 0;  // input width: W*C for the first layer, F after
};

// Activations of one hidden layer, N = B*T rows: pre = z W^T + b, act = gelu(pre).
struct HiddenActs {
    float *pre, *act;
};

// All activations of a forward pass; a second instance with the same layout
// holds their gradients.
struct Acts {
    float* emb;  // (N, C) token embeddings
    float* win;  // (N, W*C) the window of each position, oldest first
    std::vector<HiddenActs> layers;
    float *logits, *probs, *row_loss;
};

class Mlp final : public Model {
  public:
    Mlp(const ModelConfig& cfg, int max_batch)
        : Model(cfg, max_batch),
          W_(cfg.window > 0 ? cfg.window : cfg.context),
          F_(cfg.hidden > 0 ? cfg.hidden : 4 * cfg.dim) {
        build_table();
        allocate_params();
        Layout lay;
        assign_acts(lay);
        acts_.resize(lay.used());
        dacts_.resize(lay.used());
        lay.reset(acts_.data());
        a_ = assign_acts(lay);
        lay.reset(dacts_.data());
        d_ = assign_acts(lay);
        logits_ = a_.logits;
        row_loss_ = a_.row_loss;
    }

    LossResult forward(const Batch& batch) override;
    void backward(const Batch& batch) override;
    size_t activation_bytes() const override {
        return (acts_.size() + dacts_.size()) * sizeof(float);
    }

  private:
    void build_table() {
        const int64_t C = cfg_.dim, V = cfg_.vocab, F = F_;
        tok_emb_ = table_.add("tok_emb.weight", {V, C}, Init::normal);
        for (int i = 0; i < cfg_.layers; i++) {
            const std::string p = "mlp." + std::to_string(i) + ".";
            HiddenRefs r;
            r.in = i == 0 ? W_ * cfg_.dim : F_;
            r.w = table_.add(p + "weight", {F, r.in}, Init::normal);
            r.b = table_.add(p + "bias", {F}, Init::zeros);
            refs_.push_back(r);
        }
        head_w_ = table_.add("head.weight", {V, F}, Init::normal);
        head_b_ = table_.add("head.bias", {V}, Init::zeros);
    }

    Acts assign_acts(Layout& lay) const {
        const size_t N = size_t(max_batch_) * cfg_.context, C = cfg_.dim;
        Acts acts;
        acts.emb = lay.take(N * C);
        acts.win = lay.take(N * W_ * C);
        acts.layers.assign(size_t(cfg_.layers), {});
        for (auto& a : acts.layers) {
            a.pre = lay.take(N * F_);
            a.act = lay.take(N * F_);
        }
        acts.logits = lay.take(N * size_t(cfg_.vocab));
        acts.probs = lay.take(N * size_t(cfg_.vocab));
        acts.row_loss = lay.take(N);
        return acts;
    }

    // Input of hidden layer i: the stacked window, or the previous layer's output.
    static float* layer_input(const Acts& acts, int i) {
        return i == 0 ? acts.win : acts.layers[size_t(i) - 1].act;
    }

    const int W_;  // tokens seen per prediction
    const int F_;  // hidden width
    size_t tok_emb_ = 0, head_w_ = 0, head_b_ = 0;
    std::vector<HiddenRefs> refs_;
    Buffer acts_, dacts_;
    Acts a_, d_;  // activations and their gradients
    long last_counted_ = 0;
};

LossResult Mlp::forward(const Batch& batch) {
    check_batch_fits(batch, max_batch_, cfg_.context);
    const int B = batch.B, T = batch.T, N = B * T, C = cfg_.dim, V = cfg_.vocab;
    const float* P = params_.data();
    embedding_forward(a_.emb, batch.inputs, P + tok_emb_, nullptr, nullptr, B, T, C);
    window_concat_forward(a_.win, a_.emb, B, T, W_, C);
    for (int i = 0; i < cfg_.layers; i++) {
        const HiddenRefs& r = refs_[size_t(i)];
        const HiddenActs& a = a_.layers[size_t(i)];
        linear_forward(a.pre, layer_input(a_, i), P + r.w, P + r.b, N, r.in, F_);
        gelu_forward(a.act, a.pre, long(N) * F_);
    }
    linear_forward(a_.logits, a_.layers.back().act, P + head_w_, P + head_b_, N, F_, V);
    LossResult res = cross_entropy_forward(a_.probs, a_.row_loss, correct_.data(), a_.logits,
                                           batch.targets, batch.counted, N, V);
    last_counted_ = res.counted;
    return res;
}

void Mlp::backward(const Batch& batch) {
    const int B = batch.B, T = batch.T, N = B * T, C = cfg_.dim, V = cfg_.vocab;
    const float* P = params_.data();
    float* G = grads_.data();
    dacts_.zero();  // every kernel below adds into its input gradient
    cross_entropy_backward(d_.logits, a_.probs, batch.targets, batch.counted, last_counted_, N, V);
    linear_backward(d_.layers.back().act, G + head_w_, G + head_b_, d_.logits, a_.layers.back().act,
                    P + head_w_, N, F_, V);
    for (int i = cfg_.layers - 1; i >= 0; i--) {
        const HiddenRefs& r = refs_[size_t(i)];
        const HiddenActs& a = a_.layers[size_t(i)];
        const HiddenActs& d = d_.layers[size_t(i)];
        gelu_backward(d.pre, d.act, a.pre, long(N) * F_);
        linear_backward(layer_input(d_, i), G + r.w, G + r.b, d.pre, layer_input(a_, i), P + r.w, N,
                        r.in, F_);
    }
    window_concat_backward(d_.emb, d_.win, B, T, W_, C);
    embedding_backward(G + tok_emb_, nullptr, d_.emb, batch.inputs, B, T, C, V);
}

}  // namespace

std::unique_ptr<Model> make_mlp(const ModelConfig& cfg, int max_batch) {
    return std::make_unique<Mlp>(cfg, max_batch);
}

}  // namespace attnlab
