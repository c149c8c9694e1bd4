// The incremental transformer decoder (key/value cache, parameters looked up by
// name in the model's arena), the sliding window and token sampling.
#include "model/generate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/embedding.h"
#include "kernels/linear.h"
#include "kernels/norm.h"

namespace attnlab {

namespace {

void check_token(int32_t token, int V) {
    if (token < 0 || token >= V)
        throw Error(
            fmt::format("token {} is out of range: the model's vocabulary is 0..{}", token, V - 1));
}

// One linear map of the arena; per_pos (cisformer): weight [T, out, in], bias [T, out],
// position t uses slice t.
struct Lin {
    const float *w = nullptr, *b = nullptr;
    int in = 0, out = 0;
    bool per_pos = false;

    void forward(float* y, const float* x, int pos) const {
        const size_t t = per_pos ? size_t(pos) : 0;
        linear_forward(y, x, w + t * out * in, b + t * out, 1, in, out);
    }
};

struct Norm {
    const float *w = nullptr, *b = nullptr;  // b: LayerNorm only
};

struct Layer {
    Norm norm1, norm2;
    Lin qkv, proj, fc, ffn_proj;
    AttnMap map;
    std::vector<float> k, v;  // cache (context, C): keys after RoPE, values
};

// The transformer of transformer.cpp for one new position at a time: the same
// kernels on one row, with attention over the cached keys and values.
class KvDecoder final : public Decoder {
  public:
    explicit KvDecoder(const Model& model) : cfg_(model.config()) {
        const ParamTable& table = model.table();
        const float* P = model.params().data();
        const int C = cfg_.dim, H = cfg_.heads, T = cfg_.context;
        auto tensor = [&](const std::string& name) { return P + table.at(name).offset; };
        auto lin = [&](const std::string& name) {
            const ParamInfo& w = table.at(name + ".weight");
            Lin l;
            l.w = P + w.offset;
            l.b = tensor(name + ".bias");
            l.per_pos = w.shape.size() == 3;
            l.out = int(w.shape[w.shape.size() - 2]);
            l.in = int(w.shape.back());
            return l;
        };
        auto norm = [&](const std::string& name) {
            Norm n;
            n.w = tensor(name + ".weight");
            if (cfg_.norm == NormKind::layernorm) n.b = tensor(name + ".bias");
            return n;
        };
        tok_emb_ = tensor("tok_emb.weight");
        if (cfg_.pos == PosEncoding::learned) pos_emb_ = tensor("pos_emb.weight");
        for (int l = 0; l < cfg_.layers; l++) {
            const std::string p = "blocks." + std::to_string(l) + ".";
            Layer r;
            r.map = cfg_.attention[size_t(l)];
            r.norm1 = norm(p + "norm1");
            r.norm2 = norm(p + "norm2");
            r.qkv = lin(p + "attn.qkv");
            r.proj = lin(p + "attn.proj");
            r.fc = lin(p + "ffn.fc");
            r.ffn_proj = lin(p + "ffn.proj");
            r.k.resize(size_t(T) * C);
            r.v.resize(size_t(T) * C);
            layers_.push_back(std::move(r));
        }
        norm_f_ = norm("norm_f");
        head_ = lin("head");
        if (cfg_.pos == PosEncoding::sinusoidal) {
            sin_table_.resize(size_t(T) * C);
            sinusoidal_table(sin_table_.data(), T, C);
        }
        if (cfg_.pos == PosEncoding::rope) {
            rope_cos_.resize(size_t(T) * (C / H / 2));
            rope_sin_.resize(size_t(T) * (C / H / 2));
            rope_tables(rope_cos_.data(), rope_sin_.data(), T, C / H);
        }
        if (cfg_.pos == PosEncoding::alibi) {
            alibi_.resize(H);
            alibi_slopes(alibi_.data(), H);
        }
        const int F = layers_.empty() ? 0 : layers_[0].ffn_proj.in;
        const int FC = layers_.empty() ? 0 : layers_[0].fc.out;
        x_.resize(C), in_.resize(C), att_.resize(C), proj_.resize(C), res_.resize(C), n2_.resize(C);
        qkv_.resize(3 * size_t(C)), qkvr_.resize(3 * size_t(C));
        fch_.resize(FC), fca_.resize(F), ffo_.resize(C);
        logits_.resize(cfg_.vocab);
        w_.resize(T), s_.resize(T);
    }

    int length() const override { return n_; }
    int capacity() const override { return cfg_.context; }
    void reset() override { n_ = 0; }

    const float* step(int32_t token) override {
        check_token(token, cfg_.vocab);
        if (n_ >= cfg_.context)
            throw Error(fmt::format("the decoder's cache is full ({} tokens, the model's context)",
                                    cfg_.context));
        const int pos = n_, C = cfg_.dim;
        const bool pre = cfg_.norm_position == NormPosition::pre;
        float* x = x_.data();
        embedding_forward(x, &token, tok_emb_, pos_emb_ ? pos_emb_ + size_t(pos) * C : nullptr,
                          sin_table_.empty() ? nullptr : sin_table_.data() + size_t(pos) * C, 1, 1,
                          C);
        for (Layer& r : layers_) {
            // attention: pre: res = x + attn(norm1(x));  post: res = x + attn(x)
            const float* attn_in = x;
            if (pre) {
                norm(r.norm1, in_.data(), x);
                attn_in = in_.data();
            }
            r.qkv.forward(qkv_.data(), attn_in, pos);
            const float* qkv = qkv_.data();
            if (cfg_.pos == PosEncoding::rope) {
                const size_t half = size_t(C / cfg_.heads / 2);
                rope_forward(qkvr_.data(), qkv_.data(), rope_cos_.data() + pos * half,
                             rope_sin_.data() + pos * half, 1, 1, C, cfg_.heads);
                qkv = qkvr_.data();
            }
            std::copy(qkv + C, qkv + 2 * C, r.k.data() + size_t(pos) * C);
            std::copy(qkv + 2 * C, qkv + 3 * C, r.v.data() + size_t(pos) * C);
            attend(r, qkv, pos);
            r.proj.forward(proj_.data(), att_.data(), pos);
            for (int c = 0; c < C; c++) res_[c] = x[c] + proj_[c];
            // FFN: pre: x = res + ffn(norm2(res));  post: n1 = norm1(res), x = norm2(n1 + ffn(n1))
            const float* ffn_in = n2_.data();
            norm(pre ? r.norm2 : r.norm1, n2_.data(), res_.data());
            r.fc.forward(fch_.data(), ffn_in, pos);
            activation(fca_.data(), fch_.data());
            r.ffn_proj.forward(ffo_.data(), fca_.data(), pos);
            if (pre) {
                for (int c = 0; c < C; c++) x[c] = res_[c] + ffo_[c];
            } else {
                for (int c = 0; c < C; c++) res_[c] = n2_[c] + ffo_[c];
                norm(r.norm2, x, res_.data());
            }
        }
        norm(norm_f_, in_.data(), x);
        head_.forward(logits_.data(), in_.data(), pos);
        n_++;
        return logits_.data();
    }

  private:
    void norm(const Norm& n, float* out, const float* inp) {
        float mean, rstd;
        if (cfg_.norm == NormKind::layernorm)
            layernorm_forward(out, &mean, &rstd, inp, n.w, n.b, 1, cfg_.dim);
        else
            rmsnorm_forward(out, &rstd, inp, n.w, 1, cfg_.dim);
    }

    void activation(float* out, const float* inp) const {
        const int F = int(fca_.size());
        switch (cfg_.ffn_act) {
            case Activation::gelu:
                gelu_forward(out, inp, F);
                break;
            case Activation::relu:
                relu_forward(out, inp, F);
                break;
            case Activation::swiglu:
                swiglu_forward(out, inp, 1, F);
                break;
        }
    }

    // Query `pos` against the cached keys 0..pos of every head, as attention_forward
    // does for row i = pos of a window of T = context tokens: s_j = q . k_j / sqrt(hs)
    // - m_h (i - j), w = map(s) (sigmoid: ln T, see generate.h), att = sum_j w_j v_j.
    void attend(const Layer& r, const float* qkv, int pos) {
        const int C = cfg_.dim, H = cfg_.heads, hs = C / H, n = pos + 1;
        const float scale = 1.0f / std::sqrt(float(hs));
        const float log_T = std::log(float(cfg_.context));
        for (int h = 0; h < H; h++) {
            const float* q = qkv + h * hs;
            for (int j = 0; j < n; j++) {
                const float* k = r.k.data() + size_t(j) * C + h * hs;
                float dot = 0.0f;
                for (int d = 0; d < hs; d++) dot += q[d] * k[d];
                s_[j] = dot * scale;
                if (!alibi_.empty()) s_[j] -= alibi_[h] * float(pos - j);
            }
            attn_map_forward(r.map, w_.data(), s_.data(), n, log_T);
            float* out = att_.data() + h * hs;
            std::fill(out, out + hs, 0.0f);
            for (int j = 0; j < n; j++) {
                const float* v = r.v.data() + size_t(j) * C + h * hs;
                for (int d = 0; d < hs; d++) out[d] += w_[j] * v[d];
            }
        }
    }

    ModelConfig cfg_;
    const float* tok_emb_ = nullptr;
    const float* pos_emb_ = nullptr;
    std::vector<Layer> layers_;
    Norm norm_f_;
    Lin head_;
    std::vector<float> sin_table_, rope_cos_, rope_sin_, alibi_;
    // One row of activations, reused by every layer.
    std::vector<float> x_, in_, qkv_, qkvr_, att_, proj_, res_, n2_, fch_, fca_, ffo_, logits_;
    std::vector<float> s_, w_;  // one head's scores and weights over the keys seen
    int n_ = 0;
};

// Architectures without attention: Model::forward on all tokens so far, last row.
class ForwardDecoder final : public Decoder {
  public:
    explicit ForwardDecoder(Model& model) : model_(model) {}

    int length() const override { return int(tokens_.size()); }
    int capacity() const override { return model_.config().context; }
    void reset() override { tokens_.clear(); }

    const float* step(int32_t token) override {
        const int V = model_.config().vocab;
        check_token(token, V);
        if (length() >= capacity())
            throw Error(
                fmt::format("the decoder is full ({} tokens, the model's context)", capacity()));
        tokens_.push_back(token);
        const int T = length();
        targets_.assign(size_t(T), 0);
        counted_.assign(size_t(T), 0);  // no loss wanted: nothing counted
        model_.forward(Batch{tokens_.data(), targets_.data(), counted_.data(), 1, T});
        return model_.logits() + size_t(T - 1) * V;
    }

  private:
    Model& model_;
    std::vector<int32_t> tokens_, targets_;
    std::vector<uint8_t> counted_;
};

}  // namespace

std::unique_ptr<Decoder> make_decoder(Model& model) {
    const Arch arch = model.config().arch;
    // The low-rank cisformer (cis_rank > 0) takes the plain forward path.
    if ((arch == Arch::transformer || arch == Arch::cisformer) && model.config().cis_rank == 0)
        return std::make_unique<KvDecoder>(model);
    return std::make_unique<ForwardDecoder>(model);
}

SlidingDecoder::SlidingDecoder(Model& model)
    : dec_(make_decoder(model)), vocab_(model.config().vocab) {}

const float* SlidingDecoder::feed(int32_t token) {
    check_token(token, vocab_);
    if (dec_->length() == dec_->capacity()) {
        const size_t keep = size_t(std::max(1, dec_->capacity() / 2));
        window_.erase(window_.begin(), window_.end() - std::ptrdiff_t(keep));
        dec_->reset();
        for (const int32_t t : window_) dec_->step(t);
    }
    window_.push_back(token);
    return dec_->step(token);
}

int32_t sample_token(const float* logits, int V, const SampleOptions& opt, Rng& rng) {
    const int k = opt.top_k > 0 ? std::min(opt.top_k, V) : V;
    if (opt.temperature <= 0.0f || k == 1)  // greedy: the first largest logit
        return int32_t(std::max_element(logits, logits + V) - logits);
    std::vector<int32_t> order(static_cast<size_t>(V));
    std::iota(order.begin(), order.end(), 0);
    if (k < V)  // the k largest, ties to the lower token
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
            return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
        });
    double top = -INFINITY;
    for (int i = 0; i < k; i++) top = std::max(top, double(logits[order[size_t(i)]]));
    std::vector<double> p(static_cast<size_t>(k));
    double total = 0.0;
    for (int i = 0; i < k; i++)
        total += p[size_t(i)] =
            std::exp((double(logits[order[size_t(i)]]) - top) / opt.temperature);
    double u = rng.uniform() * total;
    for (int i = 0; i < k; i++) {
        u -= p[size_t(i)];
        if (u < 0.0) return order[size_t(i)];
    }
    return order[size_t(k - 1)];  // u within rounding of total
}

std::vector<int32_t> generate(Model& model, std::span<const int32_t> prompt, int tokens,
                              const SampleOptions& opt, uint64_t seed,
                              const std::function<void(int32_t)>& on_token) {
    if (prompt.empty()) throw Error("the prompt is empty: generation needs at least one token");
    if (tokens < 0) throw Error(fmt::format("tokens = {} is out of range: must be >= 0", tokens));
    if (!(opt.temperature >= 0.0f) || !std::isfinite(opt.temperature))
        throw Error(fmt::format("temperature = {} is out of range: must be >= 0 (0 = greedy)",
                                opt.temperature));
    if (opt.top_k < 0)
        throw Error(
            fmt::format("top_k = {} is out of range: must be >= 0 (0 = all tokens)", opt.top_k));
    SlidingDecoder dec(model);
    const float* logits = nullptr;
    for (const int32_t t : prompt) logits = dec.feed(t);
    Rng rng(seed);
    std::vector<int32_t> out;
    out.reserve(size_t(tokens));
    for (int i = 0; i < tokens; i++) {
        const int32_t next = sample_token(logits, dec.vocab(), opt, rng);
        out.push_back(next);
        if (on_token) on_token(next);
        if (i + 1 < tokens) logits = dec.feed(next);
    }
    return out;
}

}  // namespace attnlab
