// The decoder-only transformer and its non-translation-invariant sibling, the
// cisformer (position-specific weights in chosen linear maps). Each block is
// block.h's description (block_forward, block_backward: the same list reversed)
// with this file's batched sub-layers (attention with RoPE/ALiBi, FFN). Activation
// gradients live in one set of buffers shared by all blocks, each written first
// (GradStore::overwrite) by the kernel that produces it, so nothing is zeroed.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/profile.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/embedding.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "kernels/norm.h"
#include "model/architectures.h"
#include "model/block.h"
#include "model/layout.h"

namespace attnlab {

namespace {

// Per-layer activations (pointers into one buffer), N = B*T rows. The attention
// output projection adds into res1 and the FFN's into the block output (pre-norm)
// or res2 (post-norm), so neither needs a buffer of its own.
struct LayerActs {
    float *n1, *qkv, *qkvr, *att, *res1, *n2, *fch, *fca, *res2;
    float *mean1, *rstd1, *mean2, *rstd2;
    float* lowrank_h[4];  // h = x V(t)^T of the low-rank maps qkv, proj, fc, ffn_proj (or nullptr)
};

// All activations of a forward pass.
struct Acts {
    std::vector<float*> x;  // residual stream entering each block, and leaving the last (L + 1)
    std::vector<LayerActs> layers;
    float *xf, *mean_f, *rstd_f;  // final norm
    float *logits, *probs, *row_loss;
};

// Activation gradients, one set for all blocks (backward finishes a block before
// the next): resid is dL/d(residual stream) at the current point, updated in place
// as the blocks are undone; resid2 the post-norm block's dL/d(res2), then dL/dn1.
struct Grads {
    float *resid, *resid2, *n, *qkv, *qkvr, *att, *fch, *fca;
    float *xf, *logits;
    float* lowrank_dh;  // dL/dh of the low-rank map being undone (nullptr without them)
};

class Transformer final : public Model {
  public:
    Transformer(const ModelConfig& cfg, int max_batch) : Model(cfg, max_batch) {
        build_table();
        allocate_params();
        const int T = cfg.context, C = cfg.dim, H = cfg.heads;
        if (cfg.pos == PosEncoding::sinusoidal) {
            sin_table_.resize(size_t(T) * C);
            sinusoidal_table(sin_table_.data(), T, C);
        }
        if (cfg.pos == PosEncoding::rope) {
            rope_cos_.resize(size_t(T) * (C / H / 2));
            rope_sin_.resize(size_t(T) * (C / H / 2));
            rope_tables(rope_cos_.data(), rope_sin_.data(), T, C / H);
        }
        if (cfg.pos == PosEncoding::alibi) {
            alibi_.resize(H);
            alibi_slopes(alibi_.data(), H);
        }
        // Activations and their gradients: one layout pass to size, one to assign.
        Layout lay;
        assign_acts(lay);
        acts_.resize(lay.used());
        lay.reset(acts_.data());
        a_ = assign_acts(lay);
        lay.reset(nullptr);
        assign_grads(lay);
        dacts_.resize(lay.used());
        lay.reset(dacts_.data());
        d_ = assign_grads(lay);
        for (int l = 0; l < cfg.layers; l++) {
            BlockRefs& r = refs_[size_t(l)];
            LinearRef* maps[4] = {&r.qkv, &r.proj, &r.fc, &r.ffn_proj};
            for (int i = 0; i < 4; i++)
                maps[i]->h = a_.layers[size_t(l)].lowrank_h[i], maps[i]->dh = d_.lowrank_dh;
        }
        logits_ = a_.logits;
        row_loss_ = a_.row_loss;
        // Attention weights (and, for the maps whose backward needs them, scores) are
        // kept for backward but have no gradient buffer.
        const size_t att_size = size_t(max_batch) * H * T * T;
        weights_.resize(att_size * cfg.layers);
        if (std::any_of(cfg.attention.begin(), cfg.attention.end(), attention_map_needs_scores))
            scores_.resize(att_size * cfg.layers);
        scratch_threads_ = std::max(1, omp_get_max_threads());
        scratch_.resize(size_t(scratch_threads_) * attention_scratch_floats({max_batch, T, C, H}));
    }

    LossResult forward(const Batch& batch) override;
    void backward(const Batch& batch) override;

    const float* attention_weights(int layer) const override {
        return weights_.data() + layer_offset(layer);
    }
    size_t activation_bytes() const override {
        return (acts_.size() + dacts_.size() + scores_.size() + weights_.size() + scratch_.size()) *
               sizeof(float);
    }

  private:
    bool cis(const char* map) const {
        return cfg_.arch == Arch::cisformer &&
               std::find(cfg_.cis_linears.begin(), cfg_.cis_linears.end(), map) !=
                   cfg_.cis_linears.end();
    }
    // The rank of map `map`'s position-specific low-rank correction, 0 for none.
    int lowrank(const char* map) const { return cfg_.cis_rank > 0 && cis(map) ? cfg_.cis_rank : 0; }
    int ffn_width() const { return cfg_.ffn_mult * cfg_.dim; }
    int fc_width() const {
        return cfg_.ffn_act == Activation::swiglu ? 2 * ffn_width() : ffn_width();
    }

    void build_table() {
        const int C = cfg_.dim, V = cfg_.vocab;
        tok_emb_ = table_.add("tok_emb.weight", {V, C}, Init::normal);
        if (cfg_.pos == PosEncoding::learned)
            pos_emb_ = table_.add("pos_emb.weight", {cfg_.context, C}, Init::normal);
        const BlockShape shape = block_shape(cfg_);
        for (int l = 0; l < cfg_.layers; l++)
            refs_.push_back(add_block(table_, "blocks." + std::to_string(l) + ".", shape,
                                      cfg_.attention[size_t(l)]));
        norm_f_ = add_norm(table_, "norm_f", C, cfg_.norm);
        head_ = add_linear(table_, "head", C, V, Init::normal);
    }

    Acts assign_acts(Layout& lay) const {
        const size_t N = size_t(max_batch_) * cfg_.context, C = cfg_.dim;
        const bool post = cfg_.norm_position == NormPosition::post;
        Acts acts;
        acts.x.assign(size_t(cfg_.layers) + 1, nullptr);
        for (auto& x : acts.x) x = lay.take(N * C);
        acts.layers.assign(size_t(cfg_.layers), {});
        for (auto& a : acts.layers) {
            a.n1 = lay.take(N * C);
            a.qkv = lay.take(N * 3 * C);
            a.qkvr = cfg_.pos == PosEncoding::rope ? lay.take(N * 3 * C) : a.qkv;
            a.att = lay.take(N * C);
            a.res1 = lay.take(N * C);
            a.n2 = post ? nullptr : lay.take(N * C);
            a.fch = lay.take(N * size_t(fc_width()));
            a.fca = lay.take(N * size_t(ffn_width()));
            a.res2 = post ? lay.take(N * C) : nullptr;
            a.mean1 = lay.take(N), a.rstd1 = lay.take(N);
            a.mean2 = lay.take(N), a.rstd2 = lay.take(N);
            const char* maps[4] = {"qkv", "proj", "fc", "ffn_proj"};
            for (int i = 0; i < 4; i++)
                a.lowrank_h[i] = lowrank(maps[i]) ? lay.take(N * size_t(cfg_.cis_rank)) : nullptr;
        }
        acts.xf = lay.take(N * C);
        acts.mean_f = lay.take(N), acts.rstd_f = lay.take(N);
        acts.logits = lay.take(N * size_t(cfg_.vocab));
        acts.probs = lay.take(N * size_t(cfg_.vocab));
        acts.row_loss = lay.take(N);
        return acts;
    }

    Grads assign_grads(Layout& lay) const {
        const size_t N = size_t(max_batch_) * cfg_.context, C = cfg_.dim;
        Grads g;
        g.resid = lay.take(N * C);
        g.resid2 = cfg_.norm_position == NormPosition::post ? lay.take(N * C) : nullptr;
        g.n = lay.take(N * C);
        g.qkv = lay.take(N * 3 * C);
        g.qkvr = cfg_.pos == PosEncoding::rope ? lay.take(N * 3 * C) : g.qkv;
        g.att = lay.take(N * C);
        g.fca = lay.take(N * size_t(ffn_width()));
        // GELU and ReLU gradients are computed in place; SwiGLU's input is twice as wide.
        g.fch = cfg_.ffn_act == Activation::swiglu ? lay.take(N * size_t(fc_width())) : g.fca;
        g.xf = lay.take(N * C);
        g.logits = lay.take(N * size_t(cfg_.vocab));
        g.lowrank_dh = cfg_.arch == Arch::cisformer && cfg_.cis_rank > 0
                           ? lay.take(N * size_t(cfg_.cis_rank))
                           : nullptr;
        return g;
    }

    void norm_forward(const NormRef& n, float* out, float* mean, float* rstd, const float* inp,
                      int N) const {
        const float* P = params_.data();
        attnlab::norm_forward(cfg_.norm, out, mean, rstd, inp, P + n.w, P + n.b, N, cfg_.dim);
    }
    void norm_backward(const NormRef& n, float* dinp, const float* dout, const float* inp,
                       const float* mean, const float* rstd, int N, GradStore store) {
        const float* P = params_.data();
        float* G = grads_.data();
        attnlab::norm_backward(cfg_.norm, dinp, G + n.w, G + n.b, dout, inp, P + n.w, mean, rstd, N,
                               cfg_.dim, store);
    }
    // The FFN's activation fca = act(fch), undone inside ffn_proj's backward: d.fch.
    ActivationGrad act_grad(const LayerActs& a) const {
        return {.act = cfg_.ffn_act, .pre = a.fch, .dpre = d_.fch};
    }
    size_t layer_offset(int l) const {
        return size_t(l) * max_batch_ * cfg_.heads * cfg_.context * cfg_.context;
    }
    float* layer_scores(int l) {
        return scores_.size() ? scores_.data() + layer_offset(l) : nullptr;
    }
    float* layer_weights(int l) { return weights_.data() + layer_offset(l); }

    void check_batch(const Batch& b) const {
        if (b.B < 1 || b.B > max_batch_ || b.T < 1 || b.T > cfg_.context)
            throw Error("batch of " + std::to_string(b.B) + " x " + std::to_string(b.T) +
                        " exceeds the model's size " + std::to_string(max_batch_) + " x " +
                        std::to_string(cfg_.context));
        if (omp_get_max_threads() > scratch_threads_)
            throw Error("thread count raised after the model was built; set threads first");
    }

    size_t tok_emb_ = 0, pos_emb_ = 0;
    std::vector<BlockRefs> refs_;
    NormRef norm_f_;
    LinearRef head_;
    std::vector<float> sin_table_, rope_cos_, rope_sin_, alibi_;
    Buffer acts_, dacts_, scores_, weights_, scratch_;
    int scratch_threads_ = 1;
    int weights_T_ = 0;  // the window length whose (T, T) blocks the weights buffer holds
    Acts a_;
    Grads d_;
    long last_counted_ = 0;
};

LossResult Transformer::forward(const Batch& batch) {
    check_batch(batch);
    const int B = batch.B, T = batch.T, N = B * T, C = cfg_.dim;
    const float* P = params_.data();
    const AttentionShape sh{B, T, C, cfg_.heads};
    if (T != weights_T_) weights_.zero(), weights_T_ = T;  // entries right of the diagonal stay 0
    embedding_forward(a_.x[0], batch.inputs, P + tok_emb_,
                      cfg_.pos == PosEncoding::learned ? P + pos_emb_ : nullptr,
                      sin_table_.empty() ? nullptr : sin_table_.data(), B, T, C);
    for (int l = 0; l < cfg_.layers; l++) {
        const BlockRefs& r = refs_[size_t(l)];
        const LayerActs& a = a_.layers[size_t(l)];
        auto norm = [&](int i, float* out, const float* in) {
            if (i == 1)
                norm_forward(r.norm1, out, a.mean1, a.rstd1, in, N);
            else
                norm_forward(r.norm2, out, a.mean2, a.rstd2, in, N);
        };
        auto attn = [&](float* out, const float* in, const float* residual) {
            r.qkv.forward(a.qkv, in, P, B, T);
            if (cfg_.pos == PosEncoding::rope)
                rope_forward(a.qkvr, a.qkv, rope_cos_.data(), rope_sin_.data(), B, T, C,
                             cfg_.heads);
            attention_forward(a.att, layer_scores(l), layer_weights(l), scratch_.data(), a.qkvr,
                              r.map, alibi_.empty() ? nullptr : alibi_.data(), sh);
            r.proj.forward(out, a.att, P, B, T, {.residual = residual});
        };
        auto ffn = [&](float* out, const float* in, const float* residual) {
            // fca = act(fch), fused into fc's row blocks
            r.fc.forward(a.fch, in, P, B, T, {.act_out = a.fca, .act = cfg_.ffn_act});
            r.ffn_proj.forward(out, a.fca, P, B, T, {.residual = residual});
        };
        block_forward(cfg_.norm_position, a_.x[size_t(l)], a_.x[size_t(l) + 1],
                      {a.n1, a.res1, a.n2, a.res2}, norm, attn, ffn);
    }
    norm_forward(norm_f_, a_.xf, a_.mean_f, a_.rstd_f, a_.x.back(), N);
    head_.forward(a_.logits, a_.xf, P, B, T);
    LossResult res = cross_entropy_forward(a_.probs, a_.row_loss, correct_.data(), a_.logits,
                                           batch.targets, batch.counted, N, cfg_.vocab);
    last_counted_ = res.counted;
    return res;
}

// Every activation gradient is written (=) by the first kernel that produces it,
// and added into (+=) only where a residual or a second consumer joins.
void Transformer::backward(const Batch& batch) {
    const int B = batch.B, T = batch.T, N = B * T, C = cfg_.dim;
    const float* P = params_.data();
    float* G = grads_.data();
    const AttentionShape sh{B, T, C, cfg_.heads};
    const GradStore write = GradStore::overwrite;
    const Grads& d = d_;
    cross_entropy_backward(d.logits, a_.probs, batch.targets, batch.counted, last_counted_, N,
                           cfg_.vocab, write);
    head_.backward(d.xf, G, d.logits, a_.xf, P, B, T, write);
    norm_backward(norm_f_, d.resid, d.xf, a_.x.back(), a_.mean_f, a_.rstd_f, N, write);
    for (int l = cfg_.layers - 1; l >= 0; l--) {
        const BlockRefs& r = refs_[size_t(l)];
        const LayerActs& a = a_.layers[size_t(l)];
        auto norm = [&](int i, float* dinp, const float* dout, const float* in, GradStore st) {
            if (i == 1)
                norm_backward(r.norm1, dinp, dout, in, a.mean1, a.rstd1, N, st);
            else
                norm_backward(r.norm2, dinp, dout, in, a.mean2, a.rstd2, N, st);
        };
        auto attn = [&](float* dinp, const float* dout, const float* in, GradStore st) {
            r.proj.backward(d.att, G, dout, a.att, P, B, T, write);
            attention_backward(d.qkvr, scratch_.data(), d.att, a.qkvr, layer_scores(l),
                               layer_weights(l), r.map, sh, write);
            if (cfg_.pos == PosEncoding::rope)
                rope_backward(d.qkv, d.qkvr, rope_cos_.data(), rope_sin_.data(), B, T, C,
                              cfg_.heads, write);
            r.qkv.backward(dinp, G, d.qkv, in, P, B, T, st);
        };
        auto ffn = [&](float* dinp, const float* dout, const float* in, GradStore st) {
            // fca = act(fch) is undone inside ffn_proj's backward, into d.fch
            r.ffn_proj.backward(d.fca, G, dout, a.fca, P, B, T, write, act_grad(a));
            r.fc.backward(dinp, G, d.fch, in, P, B, T, st);
        };
        block_backward(cfg_.norm_position, a_.x[size_t(l)], {a.n1, a.res1, a.n2, a.res2}, d.resid,
                       d.resid2, d.n, norm, attn, ffn);
    }
    embedding_backward(G + tok_emb_, cfg_.pos == PosEncoding::learned ? G + pos_emb_ : nullptr,
                       d.resid, batch.inputs, B, T, C, cfg_.vocab);
}

}  // namespace

std::unique_ptr<Model> make_transformer(const ModelConfig& cfg, int max_batch) {
    return std::make_unique<Transformer>(cfg, max_batch);
}

}  // namespace attnlab
