// The U-ViT's parameter table, activation layout, forward and backward. Shapes:
// S image side, p patch, g = S / p, P = g^2 patches, pd = p^2 pixels per patch,
// T = P + 2 tokens, C width, F FFN width, H heads, L blocks, nin = (L - 1) / 2.
#include "model/uvit.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/linear.h"
#include "kernels/norm.h"
#include "model/block.h"
#include "model/layout.h"
#include "model/model.h"

namespace attnlab {

namespace {

// A block of the U-ViT: the transformer block (pre-norm LayerNorm, GELU FFN,
// bidirectional attention); out-blocks first map [x, skip] (N, 2C) back to C.
struct UvitBlock {
    bool has_skip = false;  // out-blocks
    LinearRef skip;
    BlockRefs block;
};

struct BlockActs {
    float *cat, *h;  // out-blocks: [x, skip] (N, 2C) and skip(cat) (N, C), the block's input
    float *n1, *qkv, *att, *res1, *n2, *fch, *fca;
    float *mean1, *rstd1, *mean2, *rstd2;
};

// x (B, T, C) rows 0 and 1 of each image: time embedding, class embedding.
// time: [cos(t f_i), sin(t f_i)], f_i = 10000^(-i / (C/2)), i < C/2.
void time_embedding(float* out, int t, int C) {
    const int half = C / 2;
    for (int i = 0; i < half; i++) {
        const double arg = t * std::exp(-std::log(10000.0) * i / half);
        out[i] = float(std::cos(arg));
        out[half + i] = float(std::sin(arg));
    }
}

}  // namespace

struct UViT::Impl {
    int S, p, g, P, pd, T, C, F, H, L, nin, K;
    size_t patch_w, patch_b, class_emb, pos_emb;
    std::vector<UvitBlock> blocks;
    NormRef norm_f;
    LinearRef head;
    Buffer acts, dacts, weights, scores, scratch;
    int scratch_threads = 1;
    // activations
    float *patches, *pe, *xf, *mean_f, *rstd_f, *out, *pred;
    std::vector<float*> x;  // block inputs x[0..L-1] and the last output x[L]
    std::vector<BlockActs> a;
    // activation gradients (shared by the blocks; dskip: one slot per in-block)
    float *d_resid, *d_n, *d_qkv, *d_att, *d_fca, *d_cat, *d_out, *d_pe, *d_xf;
    std::vector<float*> d_skip;

    // Bidirectional: every token sees every token (images have no order).
    AttentionShape shape(int B) const { return AttentionShape{B, T, C, H, /*causal=*/false}; }
    size_t att_size(int max_batch) const { return size_t(max_batch) * H * T * T; }

    void build_table(ParamTable& table, const ModelConfig& cfg);
    void assign_acts(Layout& lay, int max_batch);
    void assign_grads(Layout& lay, int max_batch);
};

UViT::~UViT() = default;

// The parameter table: patch embedding, class and position embeddings, the
// blocks (out-blocks with their skip map first), the final norm and the head.
void UViT::Impl::build_table(ParamTable& table, const ModelConfig& cfg) {
    const LinearRef embed = add_linear(table, "patch_embed", pd, C, Init::normal);
    patch_w = embed.w, patch_b = embed.b;
    class_emb = table.add("class_emb.weight", {K + 1, int64_t(C)}, Init::normal);
    pos_emb = table.add("pos_emb.weight", {T, int64_t(C)}, Init::normal);
    BlockShape shape;
    shape.C = C, shape.F = F;  // LayerNorm, GELU, no position-specific maps
    for (int l = 0; l < L; l++) {
        const std::string n = "blocks." + std::to_string(l) + ".";
        UvitBlock r;
        r.has_skip = l > nin;
        if (r.has_skip) r.skip = add_linear(table, n + "skip", 2 * C, C, Init::normal);
        r.block = add_block(table, n, shape, cfg.attention[size_t(l)]);
        blocks.push_back(r);
    }
    norm_f = add_norm(table, "norm_f", C, NormKind::layernorm);
    head = add_linear(table, "head", C, pd, Init::normal);
}

// Activations for (max_batch) images: patches, tokens, per-block values, the output.
void UViT::Impl::assign_acts(Layout& lay, int max_batch) {
    const size_t N = size_t(max_batch) * T, NP = size_t(max_batch) * P, Cs = size_t(C);
    patches = lay.take(NP * pd), pe = lay.take(NP * Cs);
    x.assign(size_t(L) + 1, nullptr);
    for (auto& xl : x) xl = lay.take(N * Cs);
    a.assign(size_t(L), {});
    for (int l = 0; l < L; l++) {
        BlockActs& b = a[size_t(l)];
        const bool skip = blocks[size_t(l)].has_skip;
        b.cat = skip ? lay.take(N * 2 * Cs) : nullptr;
        b.h = skip ? lay.take(N * Cs) : nullptr;
        b.n1 = lay.take(N * Cs), b.qkv = lay.take(N * 3 * Cs), b.att = lay.take(N * Cs);
        b.res1 = lay.take(N * Cs), b.n2 = lay.take(N * Cs);
        b.fch = lay.take(N * size_t(F)), b.fca = lay.take(N * size_t(F));
        b.mean1 = lay.take(N), b.rstd1 = lay.take(N), b.mean2 = lay.take(N), b.rstd2 = lay.take(N);
    }
    xf = lay.take(N * Cs), mean_f = lay.take(N), rstd_f = lay.take(N);
    out = lay.take(N * size_t(pd)), pred = lay.take(size_t(max_batch) * S * S);
}

// Activation gradients, shared by the blocks; one skip slot per in-block.
void UViT::Impl::assign_grads(Layout& lay, int max_batch) {
    const size_t N = size_t(max_batch) * T, NP = size_t(max_batch) * P, Cs = size_t(C);
    d_resid = lay.take(N * Cs), d_n = lay.take(N * Cs), d_qkv = lay.take(N * 3 * Cs);
    d_att = lay.take(N * Cs), d_fca = lay.take(N * size_t(F));
    d_cat = lay.take(N * 2 * Cs), d_out = lay.take(N * size_t(pd));
    d_pe = lay.take(NP * Cs), d_xf = lay.take(N * Cs);
    d_skip.assign(size_t(nin), nullptr);
    for (auto& d : d_skip) d = lay.take(N * Cs);
}

UViT::UViT(const ModelConfig& cfg, int max_batch)
    : cfg_(cfg), max_batch_(max_batch), impl_(std::make_unique<Impl>()) {
    if (cfg.arch != Arch::uvit)
        throw Error("UViT built from a model.arch = '" + arch_name(cfg.arch) + "' config");
    validate(cfg);
    if (max_batch < 1) throw Error("train.batch must be >= 1");
    Impl& m = *impl_;
    m.S = cfg.image, m.p = cfg.patch, m.g = m.S / m.p, m.P = m.g * m.g, m.pd = m.p * m.p;
    m.T = m.P + 2, m.C = cfg.dim, m.F = cfg.ffn_mult * cfg.dim, m.H = cfg.heads;
    m.L = cfg.layers, m.nin = (m.L - 1) / 2, m.K = cfg.vocab;
    m.build_table(table_, cfg);
    params_.resize(table_.total());
    grads_.resize(table_.total());

    // Activations and gradients: one layout pass to size, one to assign.
    Layout lay;
    m.assign_acts(lay, max_batch);
    m.acts.resize(lay.used());
    lay.reset(m.acts.data());
    m.assign_acts(lay, max_batch);
    lay.reset(nullptr);
    m.assign_grads(lay, max_batch);
    m.dacts.resize(lay.used());
    lay.reset(m.dacts.data());
    m.assign_grads(lay, max_batch);
    m.weights.resize(m.att_size(max_batch) * size_t(m.L));
    if (std::any_of(cfg.attention.begin(), cfg.attention.end(), attention_map_needs_scores))
        m.scores.resize(m.att_size(max_batch) * size_t(m.L));
    m.scratch_threads = std::max(1, omp_get_max_threads());
    m.scratch.resize(size_t(m.scratch_threads) * attention_scratch_floats(m.shape(max_batch)));
}

void UViT::init_params(uint64_t seed) {
    init_table_params(table_, params_, seed, cfg_.layers);
}

const float* UViT::prediction() const {
    return impl_->pred;
}

const float* UViT::attention_weights(int block) const {
    return impl_->weights.data() + impl_->att_size(max_batch_) * size_t(block);
}

size_t UViT::activation_bytes() const {
    const Impl& m = *impl_;
    return (m.acts.size() + m.dacts.size() + m.weights.size() + m.scores.size() +
            m.scratch.size()) *
           sizeof(float);
}

namespace {

// Image (S, S) <-> patches (P, pd): pixel (r, c) is element (r % p) p + c % p of
// patch (r / p) g + c / p. to_patches: image -> patch rows with stride ld.
void to_patches(float* patches, const float* image, int S, int p, size_t ld) {
    const int g = S / p;
    for (int r = 0; r < S; r++)
        for (int c = 0; c < S; c++)
            patches[size_t((r / p) * g + c / p) * ld + (r % p) * p + c % p] = image[r * S + c];
}
void from_patches(float* image, const float* patches, int S, int p, size_t ld) {
    const int g = S / p;
    for (int r = 0; r < S; r++)
        for (int c = 0; c < S; c++)
            image[r * S + c] = patches[size_t((r / p) * g + c / p) * ld + (r % p) * p + c % p];
}

}  // namespace

double UViT::forward(const ImageBatch& batch) {
    Impl& m = *impl_;
    const int B = batch.B, N = B * m.T, C = m.C, S = m.S;
    if (B < 1 || B > max_batch_)
        throw Error("batch of " + std::to_string(B) + " images exceeds the model's size " +
                    std::to_string(max_batch_));
    if (omp_get_max_threads() > m.scratch_threads)
        throw Error("thread count raised after the model was built; set threads first");
    for (int b = 0; b < B; b++)
        if (batch.y[b] < 0 || batch.y[b] > m.K || batch.t[b] < 0)
            throw Error("image " + std::to_string(b) + ": class " + std::to_string(batch.y[b]) +
                        " is not 0.." + std::to_string(m.K) + " (" + std::to_string(m.K) +
                        " = no class) or its level " + std::to_string(batch.t[b]) + " is negative");
    const float* P = params_.data();
    // Tokens: x0[b] = [time(t_b), class_emb[y_b], patch_embed(patches of x_b)] + pos_emb
    for (int b = 0; b < B; b++)
        to_patches(m.patches + size_t(b) * m.P * m.pd, batch.x + size_t(b) * S * S, S, m.p,
                   size_t(m.pd));
    linear_forward(m.pe, m.patches, P + m.patch_w, P + m.patch_b, B * m.P, m.pd, C);
    for (int b = 0; b < B; b++) {
        float* x0 = m.x[0] + size_t(b) * m.T * C;
        time_embedding(x0, batch.t[b], C);
        std::copy_n(P + m.class_emb + size_t(batch.y[b]) * C, C, x0 + C);
        std::copy_n(m.pe + size_t(b) * m.P * C, size_t(m.P) * C, x0 + 2 * C);
        for (size_t i = 0; i < size_t(m.T) * C; i++) x0[i] += P[m.pos_emb + i];
    }
    const AttentionShape sh = m.shape(B);
    const size_t NC = size_t(N) * C, att = m.att_size(max_batch_);
    for (int l = 0; l < m.L; l++) {
        const UvitBlock& r = m.blocks[size_t(l)];
        const BlockActs& a = m.a[size_t(l)];
        const float* in = m.x[size_t(l)];
        if (r.has_skip) {  // h = skip([x, x_skip]), x_skip the output of in-block L - 1 - l
            const float* xs = m.x[size_t(m.L - l)];
            for (int i = 0; i < N; i++) {
                std::copy_n(in + size_t(i) * C, C, a.cat + size_t(i) * 2 * C);
                std::copy_n(xs + size_t(i) * C, C, a.cat + size_t(i) * 2 * C + C);
            }
            r.skip.forward(a.h, a.cat, P, N, 1);
            in = a.h;
        }
        const BlockRefs& k = r.block;
        auto norm = [&](int i, float* out, const float* inp) {
            const NormRef& n = i == 1 ? k.norm1 : k.norm2;
            norm_forward(NormKind::layernorm, out, i == 1 ? a.mean1 : a.mean2,
                         i == 1 ? a.rstd1 : a.rstd2, inp, P + n.w, P + n.b, N, C);
        };
        auto attn = [&](float* out, const float* inp, const float* residual) {
            k.qkv.forward(a.qkv, inp, P, N, 1);
            attention_forward(a.att, m.scores.size() ? m.scores.data() + att * l : nullptr,
                              m.weights.data() + att * l, m.scratch.data(), a.qkv, k.map, nullptr,
                              sh);
            k.proj.forward(out, a.att, P, N, 1);
            add_into(out, residual, out, NC);
        };
        auto ffn = [&](float* out, const float* inp, const float* residual) {
            k.fc.forward(a.fch, inp, P, N, 1);
            gelu_forward(a.fca, a.fch, long(N) * m.F);
            k.ffn_proj.forward(out, a.fca, P, N, 1);
            add_into(out, residual, out, NC);
        };
        block_forward(NormPosition::pre, in, m.x[size_t(l) + 1], {a.n1, a.res1, a.n2, nullptr},
                      norm, attn, ffn);
    }
    layernorm_forward(m.xf, m.mean_f, m.rstd_f, m.x.back(), P + m.norm_f.w, P + m.norm_f.b, N, C);
    m.head.forward(m.out, m.xf, P, N, 1);
    for (int b = 0; b < B; b++)  // the patch tokens' outputs, back to pixels
        from_patches(m.pred + size_t(b) * S * S, m.out + (size_t(b) * m.T + 2) * m.pd, S, m.p,
                     size_t(m.pd));
    if (!batch.target) return 0.0;
    double sum = 0;
    const size_t n = size_t(B) * S * S;
    for (size_t i = 0; i < n; i++) {
        const double d = double(m.pred[i]) - batch.target[i];
        sum += d * d;
    }
    return sum / double(n);
}

void UViT::backward(const ImageBatch& batch) {
    Impl& m = *impl_;
    if (!batch.target) throw Error("UViT::backward needs the batch's target noise");
    const int B = batch.B, N = B * m.T, C = m.C, S = m.S;
    const float* P = params_.data();
    float* G = grads_.data();
    const GradStore write = GradStore::overwrite;
    const AttentionShape sh = m.shape(B);
    const size_t att = m.att_size(max_batch_);
    // loss = mean (pred - target)^2: dpred = 2 (pred - target) / n, at the patch tokens' outputs
    const float scale = 2.0f / float(size_t(B) * S * S);
    std::fill_n(m.d_out, size_t(N) * m.pd, 0.0f);
    for (int b = 0; b < B; b++)
        for (int r = 0; r < S; r++)
            for (int c = 0; c < S; c++) {
                const size_t i = size_t(b) * S * S + size_t(r) * S + c;
                m.d_out[(size_t(b) * m.T + 2 + size_t((r / m.p) * m.g + c / m.p)) * m.pd +
                        size_t((r % m.p) * m.p + c % m.p)] = scale * (m.pred[i] - batch.target[i]);
            }
    m.head.backward(m.d_xf, G, m.d_out, m.xf, P, N, 1, write);
    layernorm_backward(m.d_resid, G + m.norm_f.w, G + m.norm_f.b, m.d_xf, m.x.back(),
                       P + m.norm_f.w, m.mean_f, m.rstd_f, N, C, write);
    for (int l = m.L - 1; l >= 0; l--) {
        const UvitBlock& r = m.blocks[size_t(l)];
        const BlockActs& a = m.a[size_t(l)];
        const float* in = r.has_skip ? a.h : m.x[size_t(l)];
        if (l < m.nin)  // x[l + 1] also fed out-block L - 1 - l through its skip
            for (size_t i = 0; i < size_t(N) * C; i++) m.d_resid[i] += m.d_skip[size_t(l)][i];
        const BlockRefs& k = r.block;
        auto norm = [&](int i, float* dinp, const float* dout, const float* inp, GradStore st) {
            const NormRef& n = i == 1 ? k.norm1 : k.norm2;
            norm_backward(NormKind::layernorm, dinp, G + n.w, G + n.b, dout, inp, P + n.w,
                          i == 1 ? a.mean1 : a.mean2, i == 1 ? a.rstd1 : a.rstd2, N, C, st);
        };
        auto attn = [&](float* dinp, const float* dout, const float* inp, GradStore st) {
            k.proj.backward(m.d_att, G, dout, a.att, P, N, 1, write);
            attention_backward(m.d_qkv, m.scratch.data(), m.d_att, a.qkv,
                               m.scores.size() ? m.scores.data() + att * l : nullptr,
                               m.weights.data() + att * l, k.map, sh, write);
            k.qkv.backward(dinp, G, m.d_qkv, inp, P, N, 1, st);
        };
        auto ffn = [&](float* dinp, const float* dout, const float* inp, GradStore st) {
            k.ffn_proj.backward(m.d_fca, G, dout, a.fca, P, N, 1, write);
            gelu_backward(m.d_fca, m.d_fca, a.fch, long(N) * m.F, write);
            k.fc.backward(dinp, G, m.d_fca, inp, P, N, 1, st);
        };
        block_backward(NormPosition::pre, in, {a.n1, a.res1, a.n2, nullptr}, m.d_resid, nullptr,
                       m.d_n, norm, attn, ffn);
        if (r.has_skip) {  // h = skip([x, x_skip]): split dL/dcat into dL/dx and the skip's share
            r.skip.backward(m.d_cat, G, m.d_resid, a.cat, P, N, 1, write);
            float* dskip = m.d_skip[size_t(m.L - 1 - l)];
            for (int i = 0; i < N; i++) {
                std::copy_n(m.d_cat + size_t(i) * 2 * C, C, m.d_resid + size_t(i) * C);
                std::copy_n(m.d_cat + size_t(i) * 2 * C + C, C, dskip + size_t(i) * C);
            }
        }
    }
    // x0 = [time, class_emb[y], patch_embed(patches)] + pos_emb
    for (int b = 0; b < B; b++) {
        const float* d0 = m.d_resid + size_t(b) * m.T * C;
        for (size_t i = 0; i < size_t(m.T) * C; i++) G[m.pos_emb + i] += d0[i];
        float* dce = G + m.class_emb + size_t(batch.y[b]) * C;
        for (int c = 0; c < C; c++) dce[c] += d0[C + c];
        std::copy_n(d0 + 2 * C, size_t(m.P) * C, m.d_pe + size_t(b) * m.P * C);
    }
    linear_backward(nullptr, G + m.patch_w, G + m.patch_b, m.d_pe, m.patches, P + m.patch_w,
                    B * m.P, m.pd, C);
}

void load_uvit(UViT& model, const std::string& path) {
    load_table_params(model.table(), model.params(), path);
}

}  // namespace attnlab
