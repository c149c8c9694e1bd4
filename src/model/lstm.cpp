// The LSTM language model: token embedding -> L LSTM layers of width C -> linear
// head, one prediction per position, exact backpropagation through the window.
#include "kernels/lstm.h"

#include <string>
#include <vector>

#include "kernels/embedding.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "model/architectures.h"
#include "model/layout.h"

namespace attnlab {

namespace {

struct LstmRefs {
    size_t w_ih = 0, w_hh = 0, bias = 0;
};

// Per-layer activations, N = B*T rows: the gates (i, f, g, o after their
// non-linearities; in the gradient layout dL/d pre-activation), cell state,
// tanh of it, and the output h (the next layer's input).
struct LstmActs {
    float *gates, *c, *tanh_c, *h;
};

// All activations of a forward pass; a second instance with the same layout
// holds their gradients.
struct Acts {
    float* emb;  // (N, C), the first layer's input
    std::vector<LstmActs> layers;
    float *logits, *probs, *row_loss;
};

class Lstm final : public Model {
  public:
    Lstm(const ModelConfig& cfg, int max_batch) : Model(cfg, max_batch) {
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
        const int64_t C = cfg_.dim, V = cfg_.vocab;
        tok_emb_ = table_.add("tok_emb.weight", {V, C}, Init::normal);
        for (int l = 0; l < cfg_.layers; l++) {
            const std::string p = "lstm." + std::to_string(l) + ".";
            LstmRefs r;
            r.w_ih = table_.add(p + "weight_ih", {4 * C, C}, Init::normal);
            r.w_hh = table_.add(p + "weight_hh", {4 * C, C}, Init::normal);
            r.bias = table_.add(p + "bias", {4 * C}, Init::forget_bias);
            refs_.push_back(r);
        }
        head_w_ = table_.add("head.weight", {V, C}, Init::normal);
        head_b_ = table_.add("head.bias", {V}, Init::zeros);
    }

    Acts assign_acts(Layout& lay) const {
        const size_t N = size_t(max_batch_) * cfg_.context, C = cfg_.dim;
        Acts acts;
        acts.emb = lay.take(N * C);
        acts.layers.assign(size_t(cfg_.layers), {});
        for (auto& a : acts.layers) {
            a.gates = lay.take(N * 4 * C);
            a.c = lay.take(N * C);
            a.tanh_c = lay.take(N * C);
            a.h = lay.take(N * C);
        }
        acts.logits = lay.take(N * size_t(cfg_.vocab));
        acts.probs = lay.take(N * size_t(cfg_.vocab));
        acts.row_loss = lay.take(N);
        return acts;
    }

    // Input of layer l: the embedding, or the previous layer's h.
    static float* layer_input(const Acts& acts, int l) {
        return l == 0 ? acts.emb : acts.layers[size_t(l) - 1].h;
    }

    size_t tok_emb_ = 0, head_w_ = 0, head_b_ = 0;
    std::vector<LstmRefs> refs_;
    Buffer acts_, dacts_;
    Acts a_, d_;  // activations and their gradients
    long last_counted_ = 0;
};

LossResult Lstm::forward(const Batch& batch) {
    check_batch_fits(batch, max_batch_, cfg_.context);
    const int B = batch.B, T = batch.T, N = B * T, C = cfg_.dim, V = cfg_.vocab;
    const float* P = params_.data();
    embedding_forward(a_.emb, batch.inputs, P + tok_emb_, nullptr, nullptr, B, T, C);
    for (int l = 0; l < cfg_.layers; l++) {
        const LstmRefs& r = refs_[size_t(l)];
        const LstmActs& a = a_.layers[size_t(l)];
        lstm_forward(a.h, a.c, a.tanh_c, a.gates, layer_input(a_, l), P + r.w_ih, P + r.w_hh,
                     P + r.bias, B, T, C, C);
    }
    linear_forward(a_.logits, a_.layers.back().h, P + head_w_, P + head_b_, N, C, V);
    LossResult res = cross_entropy_forward(a_.probs, a_.row_loss, correct_.data(), a_.logits,
                                           batch.targets, batch.counted, N, V);
    last_counted_ = res.counted;
    return res;
}

void Lstm::backward(const Batch& batch) {
    const int B = batch.B, T = batch.T, N = B * T, C = cfg_.dim, V = cfg_.vocab;
    const float* P = params_.data();
    float* G = grads_.data();
    dacts_.zero();  // every kernel below adds into its input gradient
    cross_entropy_backward(d_.logits, a_.probs, batch.targets, batch.counted, last_counted_, N, V);
    linear_backward(d_.layers.back().h, G + head_w_, G + head_b_, d_.logits, a_.layers.back().h,
                    P + head_w_, N, C, V);
    for (int l = cfg_.layers - 1; l >= 0; l--) {
        const LstmRefs& r = refs_[size_t(l)];
        const LstmActs& a = a_.layers[size_t(l)];
        const LstmActs& d = d_.layers[size_t(l)];
        lstm_backward(layer_input(d_, l), G + r.w_ih, G + r.w_hh, G + r.bias, d.gates, d.c, d.h,
                      layer_input(a_, l), a.h, a.c, a.tanh_c, a.gates, P + r.w_ih, P + r.w_hh, B, T,
                      C, C);
    }
    embedding_backward(G + tok_emb_, nullptr, d_.emb, batch.inputs, B, T, C, V);
}

}  // namespace

std::unique_ptr<Model> make_lstm(const ModelConfig& cfg, int max_batch) {
    return std::make_unique<Lstm>(cfg, max_batch);
}

}  // namespace attnlab
