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
#include "model/block.h"

namespace attnlab {

namespace {

void check_token(int32_t token, int V) {
    if (token < 0 || token >= V)
        throw Error(
            fmt::format("token {} is out of range: the model's vocabulary is 0..{}", token, V - 1));
}

struct Layer {
    BlockRefs refs;
    std::vector<float> k, v;  // cache (context, C): keys after RoPE, values
};

// The transformer of transformer.cpp for one new position at a time: the same
// kernels on one row, with attention over the cached keys and values.
class KvDecoder final : public Decoder {
  public:
    explicit KvDecoder(const Model& model) : cfg_(model.config()), P_(model.params().data()) {
        const ParamTable& table = model.table();
        const int C = cfg_.dim, H = cfg_.heads, T = cfg_.context;
        tok_emb_ = P_ + table.at("tok_emb.weight").offset;
        if (cfg_.pos == PosEncoding::learned) pos_emb_ = P_ + table.at("pos_emb.weight").offset;
        for (int l = 0; l < cfg_.layers; l++) {
            Layer r;
            r.refs = find_block(table, "blocks." + std::to_string(l) + ".", cfg_.norm,
                                cfg_.attention[size_t(l)]);
            r.k.resize(size_t(T) * C);
            r.v.resize(size_t(T) * C);
            layers_.push_back(std::move(r));
        }
        norm_f_ = find_norm(table, "norm_f", cfg_.norm);
        head_ = find_linear(table, "head");
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
        const int F = layers_.empty() ? 0 : layers_[0].refs.ffn_proj.in;
        const int FC = layers_.empty() ? 0 : layers_[0].refs.fc.out;
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
        float* x = x_.data();
        embedding_forward(x, &token, tok_emb_, pos_emb_ ? pos_emb_ + size_t(pos) * C : nullptr,
                          sin_table_.empty() ? nullptr : sin_table_.data() + size_t(pos) * C, 1, 1,
                          C);
        for (Layer& r : layers_) {
            const BlockRefs& b = r.refs;
            auto norm_i = [&](int i, float* out, const float* in) {
                norm(i == 1 ? b.norm1 : b.norm2, out, in);
            };
            auto attn = [&](float* out, const float* in, const float* residual) {
                b.qkv.forward_at(qkv_.data(), in, P_, pos);
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
                b.proj.forward_at(proj_.data(), att_.data(), P_, pos);
                for (int c = 0; c < C; c++) out[c] = residual[c] + proj_[c];
            };
            auto ffn = [&](float* out, const float* in, const float* residual) {
                b.fc.forward_at(fch_.data(), in, P_, pos);
                activation_forward(cfg_.ffn_act, fca_.data(), fch_.data(), 1, int(fca_.size()));
                b.ffn_proj.forward_at(ffo_.data(), fca_.data(), P_, pos);
                for (int c = 0; c < C; c++) out[c] = residual[c] + ffo_[c];
            };
            // One row of buffers; post-norm's two residual sums share res_ (res1 is
            // used up by norm1 before res2 is written).
            block_forward(cfg_.norm_position, x, x,
                          {in_.data(), res_.data(), n2_.data(), res_.data()}, norm_i, attn, ffn);
        }
        norm(norm_f_, in_.data(), x);
        head_.forward_at(logits_.data(), in_.data(), P_, pos);
        n_++;
        return logits_.data();
    }

  private:
    void norm(const NormRef& n, float* out, const float* inp) {
        float mean, rstd;
        norm_forward(cfg_.norm, out, &mean, &rstd, inp, P_ + n.w, P_ + n.b, 1, cfg_.dim);
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
            attn_map_forward(r.refs.map, w_.data(), s_.data(), n, log_T);
            float* out = att_.data() + h * hs;
            std::fill(out, out + hs, 0.0f);
            for (int j = 0; j < n; j++) {
                const float* v = r.v.data() + size_t(j) * C + h * hs;
                for (int d = 0; d < hs; d++) out[d] += w_[j] * v[d];
            }
        }
    }

    ModelConfig cfg_;
    const float* P_;  // the model's parameters
    const float* tok_emb_ = nullptr;
    const float* pos_emb_ = nullptr;
    std::vector<Layer> layers_;
    NormRef norm_f_;
    LinearRef head_;
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
