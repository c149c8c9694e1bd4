// The decoder-only transformer and its non-translation-invariant sibling, the
// cisformer (position-specific weights in chosen linear maps). Forward is one
// list of kernel calls per block; backward is the same list reversed.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/embedding.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "kernels/norm.h"
#include "model/architectures.h"

namespace attnlab {

namespace {

// A linear map's place in the arena; per_pos: one (W, b) per position (cisformer).
struct LinearRef {
    size_t w = 0, b = 0;
    int in = 0, out = 0;
    bool per_pos = false;

    void forward(float* out_, const float* inp, const float* P, int B, int T) const {
        if (per_pos)
            linear_pos_forward(out_, inp, P + w, P + b, B, T, in, out);
        else
            linear_forward(out_, inp, P + w, P + b, B * T, in, out);
    }
    void backward(float* dinp, float* G, const float* dout, const float* inp, const float* P, int B,
                  int T) const {
        if (per_pos)
            linear_pos_backward(dinp, G + w, G + b, dout, inp, P + w, B, T, in, out);
        else
            linear_backward(dinp, G + w, G + b, dout, inp, P + w, B * T, in, out);
    }
};

struct NormRef {
    size_t w = 0, b = 0;  // b unused for RMSNorm
};

struct LayerRefs {
    NormRef norm1, norm2;
    LinearRef qkv, proj, fc, ffn_proj;
    AttnMap map;
};

// Per-layer activations (pointers into one buffer; the gradient buffer has the
// same layout). N = B*T rows.
struct LayerActs {
    float *n1, *qkv, *qkvr, *att, *proj, *res1, *n2, *fch, *fca, *ffo, *res2;
    float *mean1, *rstd1, *mean2, *rstd2;
};

// All activations of a forward pass; a second instance with the same layout
// holds their gradients.
struct Acts {
    std::vector<float*> x;  // residual stream entering each block, and leaving the last (L + 1)
    std::vector<LayerActs> layers;
    float *xf, *mean_f, *rstd_f;  // final norm
    float *logits, *probs, *row_loss;
};

// Residual adds.
static void add_into(float* out, const float* a, const float* b, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}
static void accumulate(float* dst, const float* src, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

// Carves named slices out of one buffer: first pass counts, second assigns.
class Layout {
public:
    float* take(size_t n) {
        float* p = base_ ? base_ + used_ : nullptr;
        used_ += (n + 15) / 16 * 16;
        return p;
    }
    void reset(float* base) { base_ = base, used_ = 0; }
    size_t used() const { return used_; }

private:
    float* base_ = nullptr;
    size_t used_ = 0;
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
        dacts_.resize(lay.used());
        lay.reset(acts_.data());
        a_ = assign_acts(lay);
        lay.reset(dacts_.data());
        d_ = assign_acts(lay);
        logits_ = a_.logits;
        row_loss_ = a_.row_loss;
        // Attention scores and weights are needed in backward but have no gradient buffer.
        const size_t att_size = size_t(max_batch) * H * T * T;
        scores_.resize(att_size * cfg.layers);
        weights_.resize(att_size * cfg.layers);
        scratch_threads_ = std::max(1, omp_get_max_threads());
        scratch_.resize(size_t(scratch_threads_) * T * T);
    }

    LossResult forward(const Batch& batch) override;
    void backward(const Batch& batch) override;

    const float* attention_weights(int layer) const override {
        return weights_.data() + size_t(layer) * max_batch_ * cfg_.heads * cfg_.context * cfg_.context;
    }
    size_t activation_bytes() const override {
        return (acts_.size() + dacts_.size() + scores_.size() + weights_.size() + scratch_.size()) *
               sizeof(float);
    }

private:
    bool cis(const char* map) const {
        return cfg_.arch == Arch::cisformer &&
               std::find(cfg_.cis_maps.begin(), cfg_.cis_maps.end(), map) != cfg_.cis_maps.end();
    }
    int ffn_width() const { return cfg_.ffn_mult * cfg_.dim; }
    int fc_width() const { return cfg_.ffn_act == Activation::swiglu ? 2 * ffn_width() : ffn_width(); }

    LinearRef add_linear(const std::string& name, int in, int out, bool per_pos, Init init) {
        const int64_t T = cfg_.context;
        LinearRef l;
        l.in = in, l.out = out, l.per_pos = per_pos;
        if (per_pos) {
            l.w = table_.add(name + ".weight", {T, out, in}, init);
            l.b = table_.add(name + ".bias", {T, out}, Init::zeros);
        } else {
            l.w = table_.add(name + ".weight", {out, in}, init);
            l.b = table_.add(name + ".bias", {out}, Init::zeros);
        }
        return l;
    }
    NormRef add_norm(const std::string& name) {
        NormRef n;
        n.w = table_.add(name + ".weight", {cfg_.dim}, Init::ones);
        if (cfg_.norm == NormKind::layernorm) n.b = table_.add(name + ".bias", {cfg_.dim}, Init::zeros);
        return n;
    }

    void build_table() {
        const int C = cfg_.dim, V = cfg_.vocab;
        tok_emb_ = table_.add("tok_emb.weight", {V, C}, Init::normal);
        if (cfg_.pos == PosEncoding::learned)
            pos_emb_ = table_.add("pos_emb.weight", {cfg_.context, C}, Init::normal);
        for (int l = 0; l < cfg_.layers; l++) {
            const std::string p = "blocks." + std::to_string(l) + ".";
            LayerRefs r;
            r.map = cfg_.attention[size_t(l)];
            r.norm1 = add_norm(p + "norm1");
            r.qkv = add_linear(p + "attn.qkv", C, 3 * C, cis("qkv"), Init::normal);
            r.proj = add_linear(p + "attn.proj", C, C, cis("proj"), Init::residual);
            r.norm2 = add_norm(p + "norm2");
            r.fc = add_linear(p + "ffn.fc", C, fc_width(), cis("fc"), Init::normal);
            r.ffn_proj = add_linear(p + "ffn.proj", ffn_width(), C, cis("ffn_proj"), Init::residual);
            refs_.push_back(r);
        }
        norm_f_ = add_norm("norm_f");
        head_ = add_linear("head", C, V, false, Init::normal);
    }

    Acts assign_acts(Layout& lay) const {
        const size_t N = size_t(max_batch_) * cfg_.context, C = cfg_.dim;
        Acts acts;
        acts.x.assign(size_t(cfg_.layers) + 1, nullptr);
        for (auto& x : acts.x) x = lay.take(N * C);
        acts.layers.assign(size_t(cfg_.layers), {});
        for (auto& a : acts.layers) {
            a.n1 = lay.take(N * C);
            a.qkv = lay.take(N * 3 * C);
            a.qkvr = cfg_.pos == PosEncoding::rope ? lay.take(N * 3 * C) : a.qkv;
            a.att = lay.take(N * C);
            a.proj = lay.take(N * C);
            a.res1 = lay.take(N * C);
            a.n2 = lay.take(N * C);
            a.fch = lay.take(N * size_t(fc_width()));
            a.fca = lay.take(N * size_t(ffn_width()));
            a.ffo = lay.take(N * C);
            a.res2 = lay.take(N * C);
            a.mean1 = lay.take(N), a.rstd1 = lay.take(N);
            a.mean2 = lay.take(N), a.rstd2 = lay.take(N);
        }
        acts.xf = lay.take(N * C);
        acts.mean_f = lay.take(N), acts.rstd_f = lay.take(N);
        acts.logits = lay.take(N * size_t(cfg_.vocab));
        acts.probs = lay.take(N * size_t(cfg_.vocab));
        acts.row_loss = lay.take(N);
        return acts;
    }

    void norm_forward(const NormRef& n, float* out, float* mean, float* rstd, const float* inp,
                      int N) const {
        const float* P = params_.data();
        if (cfg_.norm == NormKind::layernorm)
            layernorm_forward(out, mean, rstd, inp, P + n.w, P + n.b, N, cfg_.dim);
        else
            rmsnorm_forward(out, rstd, inp, P + n.w, N, cfg_.dim);
    }
    void norm_backward(const NormRef& n, float* dinp, const float* dout, const float* inp,
                       const float* mean, const float* rstd, int N) {
        const float* P = params_.data();
        float* G = grads_.data();
        if (cfg_.norm == NormKind::layernorm)
            layernorm_backward(dinp, G + n.w, G + n.b, dout, inp, P + n.w, mean, rstd, N, cfg_.dim);
        else
            rmsnorm_backward(dinp, G + n.w, dout, inp, P + n.w, rstd, N, cfg_.dim);
    }
    void act_forward(float* out, const float* inp, int N) const {
        const long n = long(N) * ffn_width();
        switch (cfg_.ffn_act) {
            case Activation::gelu: gelu_forward(out, inp, n); break;
            case Activation::relu: relu_forward(out, inp, n); break;
            case Activation::swiglu: swiglu_forward(out, inp, N, ffn_width()); break;
        }
    }
    void act_backward(float* dinp, const float* dout, const float* inp, int N) const {
        const long n = long(N) * ffn_width();
        switch (cfg_.ffn_act) {
            case Activation::gelu: gelu_backward(dinp, dout, inp, n); break;
            case Activation::relu: relu_backward(dinp, dout, inp, n); break;
            case Activation::swiglu: swiglu_backward(dinp, dout, inp, N, ffn_width()); break;
        }
    }
    float* layer_scores(int l) { return scores_.data() + size_t(l) * max_batch_ * cfg_.heads * cfg_.context * cfg_.context; }
    float* layer_weights(int l) { return weights_.data() + size_t(l) * max_batch_ * cfg_.heads * cfg_.context * cfg_.context; }

    void check_batch(const Batch& b) const {
        if (b.B < 1 || b.B > max_batch_ || b.T < 1 || b.T > cfg_.context)
            throw Error("batch of " + std::to_string(b.B) + " x " + std::to_string(b.T) +
                        " exceeds the model's size " + std::to_string(max_batch_) + " x " +
                        std::to_string(cfg_.context));
        if (omp_get_max_threads() > scratch_threads_)
            throw Error("thread count raised after the model was built; set threads first");
    }

    size_t tok_emb_ = 0, pos_emb_ = 0;
    std::vector<LayerRefs> refs_;
    NormRef norm_f_;
    LinearRef head_;
    std::vector<float> sin_table_, rope_cos_, rope_sin_, alibi_;
    Buffer acts_, dacts_, scores_, weights_, scratch_;
    int scratch_threads_ = 1;
    Acts a_, d_;  // activations and their gradients
    long last_counted_ = 0;
};

LossResult Transformer::forward(const Batch& batch) {
    check_batch(batch);
    const int B = batch.B, T = batch.T, N = B * T, C = cfg_.dim;
    const size_t NC = size_t(N) * C;
    const float* P = params_.data();
    const AttentionShape sh{B, T, C, cfg_.heads};
    const bool pre = cfg_.norm_position == NormPosition::pre;
    embedding_forward(a_.x[0], batch.inputs, P + tok_emb_,
                      cfg_.pos == PosEncoding::learned ? P + pos_emb_ : nullptr,
                      sin_table_.empty() ? nullptr : sin_table_.data(), B, T, C);
    for (int l = 0; l < cfg_.layers; l++) {
        const LayerRefs& r = refs_[size_t(l)];
        const LayerActs& a = a_.layers[size_t(l)];
        const float* x = a_.x[size_t(l)];
        float* xo = a_.x[size_t(l) + 1];
        // attention: pre: res1 = x + attn(norm1(x));  post: res1 = x + attn(x), n1 = norm1(res1)
        const float* attn_in = pre ? a.n1 : x;
        if (pre) norm_forward(r.norm1, a.n1, a.mean1, a.rstd1, x, N);
        r.qkv.forward(a.qkv, attn_in, P, B, T);
        if (cfg_.pos == PosEncoding::rope)
            rope_forward(a.qkvr, a.qkv, rope_cos_.data(), rope_sin_.data(), B, T, C, cfg_.heads);
        attention_forward(a.att, layer_scores(l), layer_weights(l), a.qkvr, r.map,
                          alibi_.empty() ? nullptr : alibi_.data(), sh);
        r.proj.forward(a.proj, a.att, P, B, T);
        add_into(a.res1, x, a.proj, NC);
        // FFN: pre: xo = res1 + ffn(norm2(res1));  post: res2 = n1 + ffn(n1), xo = norm2(res2)
        const float* ffn_in = pre ? a.n2 : a.n1;
        if (pre)
            norm_forward(r.norm2, a.n2, a.mean2, a.rstd2, a.res1, N);
        else
            norm_forward(r.norm1, a.n1, a.mean1, a.rstd1, a.res1, N);
        r.fc.forward(a.fch, ffn_in, P, B, T);
        act_forward(a.fca, a.fch, N);
        r.ffn_proj.forward(a.ffo, a.fca, P, B, T);
        if (pre) {
            add_into(xo, a.res1, a.ffo, NC);
        } else {
            add_into(a.res2, a.n1, a.ffo, NC);
            norm_forward(r.norm2, xo, a.mean2, a.rstd2, a.res2, N);
        }
    }
    norm_forward(norm_f_, a_.xf, a_.mean_f, a_.rstd_f, a_.x.back(), N);
    head_.forward(a_.logits, a_.xf, P, B, T);
    LossResult res = cross_entropy_forward(a_.probs, a_.row_loss, correct_.data(), a_.logits,
                                           batch.targets, batch.counted, N, cfg_.vocab);
    last_counted_ = res.counted;
    return res;
}

void Transformer::backward(const Batch& batch) {
    const int B = batch.B, T = batch.T, N = B * T, C = cfg_.dim;
    const size_t NC = size_t(N) * C;
    const float* P = params_.data();
    float* G = grads_.data();
    const AttentionShape sh{B, T, C, cfg_.heads};
    const bool pre = cfg_.norm_position == NormPosition::pre;
    dacts_.zero();  // every kernel below adds into its input gradient
    cross_entropy_backward(d_.logits, a_.probs, batch.targets, batch.counted, last_counted_, N,
                           cfg_.vocab);
    head_.backward(d_.xf, G, d_.logits, a_.xf, P, B, T);
    norm_backward(norm_f_, d_.x.back(), d_.xf, a_.x.back(), a_.mean_f, a_.rstd_f, N);
    for (int l = cfg_.layers - 1; l >= 0; l--) {
        const LayerRefs& r = refs_[size_t(l)];
        const LayerActs& a = a_.layers[size_t(l)];
        const LayerActs& d = d_.layers[size_t(l)];
        const float* x = a_.x[size_t(l)];
        float* dx = d_.x[size_t(l)];
        const float* dxo = d_.x[size_t(l) + 1];
        // FFN, reversed
        const float* dffo = dxo;
        if (pre) {
            accumulate(d.res1, dxo, NC);  // xo = res1 + ffo
        } else {
            norm_backward(r.norm2, d.res2, dxo, a.res2, a.mean2, a.rstd2, N);  // xo = norm2(res2)
            accumulate(d.n1, d.res2, NC);                                       // res2 = n1 + ffo
            dffo = d.res2;
        }
        r.ffn_proj.backward(d.fca, G, dffo, a.fca, P, B, T);
        act_backward(d.fch, d.fca, a.fch, N);
        if (pre) {
            r.fc.backward(d.n2, G, d.fch, a.n2, P, B, T);
            norm_backward(r.norm2, d.res1, d.n2, a.res1, a.mean2, a.rstd2, N);  // n2 = norm2(res1)
        } else {
            r.fc.backward(d.n1, G, d.fch, a.n1, P, B, T);
            norm_backward(r.norm1, d.res1, d.n1, a.res1, a.mean1, a.rstd1, N);  // n1 = norm1(res1)
        }
        // attention, reversed: res1 = x + proj(att)
        accumulate(dx, d.res1, NC);
        r.proj.backward(d.att, G, d.res1, a.att, P, B, T);
        attention_backward(d.qkvr, scratch_.data(), d.att, a.qkvr, layer_scores(l),
                           layer_weights(l), r.map, sh);
        if (cfg_.pos == PosEncoding::rope)
            rope_backward(d.qkv, d.qkvr, rope_cos_.data(), rope_sin_.data(), B, T, C, cfg_.heads);
        if (pre) {
            r.qkv.backward(d.n1, G, d.qkv, a.n1, P, B, T);
            norm_backward(r.norm1, dx, d.n1, x, a.mean1, a.rstd1, N);  // n1 = norm1(x)
        } else {
            r.qkv.backward(dx, G, d.qkv, x, P, B, T);
        }
    }
    embedding_backward(G + tok_emb_, cfg_.pos == PosEncoding::learned ? G + pos_emb_ : nullptr,
                       d_.x[0], batch.inputs, B, T, C, cfg_.vocab);
}

}  // namespace

std::unique_ptr<Model> make_transformer(const ModelConfig& cfg, int max_batch) {
    return std::make_unique<Transformer>(cfg, max_batch);
}

}  // namespace attnlab
