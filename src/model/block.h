// The transformer block, described once: an attention sub-layer and an FFN
// sub-layer, each inside a residual, with the norm before (pre) or after (post):
//   pre:  x = x + attn(norm1(x));    x = x + ffn(norm2(x))
//   post: x = norm1(x + attn(x));    x = norm2(x + ffn(x))
// Its parameters (BlockRefs, named blocks.<l>.norm1, attn.qkv, attn.proj, norm2,
// ffn.fc, ffn.proj in the arena), its wiring forward (block_forward) and reversed
// (block_backward) are shared by the transformer and cisformer (training), the
// key/value-cache decoder (one row at a time) and the U-ViT; each supplies the
// sub-layers for its own buffers (batched, one row, bidirectional with skips).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/arena.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/grad_store.h"
#include "kernels/linear.h"
#include "kernels/norm.h"
#include "model/config.h"

namespace attnlab {

// Residual add out = a + b (out may be a or b).
void add_into(float* out, const float* a, const float* b, size_t n);

// A linear map's place in the arena; per_pos: one (W, b) per position (cisformer);
// rank > 0: a shared (W, b) plus the position-specific low-rank U(t) V(t) (the
// parameter-matched cisformer), whose activation h and gradient scratch dh are set
// once the model's buffers exist.
struct LinearRef {
    size_t w = 0, b = 0, u = 0, v = 0;
    int in = 0, out = 0, rank = 0;
    bool per_pos = false;
    float *h = nullptr, *dh = nullptr;

    // out (B, T, out) from inp (B, T, in). The shared map fuses the epilogue into its
    // row blocks; the per-position and low-rank ones run it as passes of their own.
    void forward(float* out_, const float* inp, const float* P, int B, int T,
                 const LinearEpilogue& ep = {}) const;
    void backward(float* dinp, float* G, const float* dout, const float* inp, const float* P, int B,
                  int T, GradStore store, const ActivationGrad& ag = {}) const;
    // One row at position t (the decoder): the shared map, or slice t of a per-position one.
    void forward_at(float* y, const float* x, const float* P, int t) const;
};

struct NormRef {
    size_t w = 0, b = 0;  // b: LayerNorm only
};

struct BlockRefs {
    NormRef norm1, norm2;
    LinearRef qkv, proj, fc, ffn_proj;
    AttnMap map = AttnMap::softmax;
};

// What a block's parameters look like: width C, FFN width F (fc has 2F outputs
// for SwiGLU), the norm, and which maps are position-specific (cisformer) with
// the window length T and the low-rank form's rank.
struct BlockShape {
    int C = 0, F = 0;
    Activation act = Activation::gelu;
    NormKind norm = NormKind::layernorm;
    int64_t T = 0;
    int rank = 0;
    bool cis_qkv = false, cis_proj = false, cis_fc = false, cis_ffn_proj = false;
};
BlockShape block_shape(const ModelConfig& cfg);  // as the transformer/cisformer builds it

// Adds a block's tensors to the table under `prefix` ("blocks.3.").
BlockRefs add_block(ParamTable& table, const std::string& prefix, const BlockShape& s, AttnMap map);
NormRef add_norm(ParamTable& table, const std::string& name, int C, NormKind norm);
LinearRef add_linear(ParamTable& table, const std::string& name, int in, int out, Init init,
                     bool per_pos = false, int64_t T = 0, int rank = 0);
// Finds a block's tensors in a built table by name (shapes from the table).
BlockRefs find_block(const ParamTable& table, const std::string& prefix, NormKind norm,
                     AttnMap map);
NormRef find_norm(const ParamTable& table, const std::string& name, NormKind norm);
LinearRef find_linear(const ParamTable& table, const std::string& name);

// The buffers the wiring passes between sub-layers: the norms' outputs and the
// residual sums (res2: post-norm's FFN sum; n2 unused there).
struct BlockBuffers {
    float *n1, *res1, *n2, *res2;
};

// Forward of one block from x to xo (xo may be x). The model supplies
//   norm(i, out, in)             out = norm_i(in), i = 1 or 2
//   attn(out, in, residual)      out = residual + attn(in)
//   ffn(out, in, residual)       out = residual + ffn(in)
template <class Norm, class Attn, class Ffn>
void block_forward(NormPosition where, const float* x, float* xo, const BlockBuffers& b,
                   Norm&& norm, Attn&& attn, Ffn&& ffn) {
    if (where == NormPosition::pre) {
        norm(1, b.n1, x);       // n1 = norm1(x)
        attn(b.res1, b.n1, x);  // res1 = x + attn(n1)
        norm(2, b.n2, b.res1);  // n2 = norm2(res1)
        ffn(xo, b.n2, b.res1);  // xo = res1 + ffn(n2)
    } else {
        attn(b.res1, x, x);       // res1 = x + attn(x)
        norm(1, b.n1, b.res1);    // n1 = norm1(res1)
        ffn(b.res2, b.n1, b.n1);  // res2 = n1 + ffn(n1)
        norm(2, xo, b.res2);      // xo = norm2(res2)
    }
}

// Backward of block_forward, the same list reversed. On entry dresid holds dL/dxo,
// on return dL/dx; dresid2 (post-norm) and dn are scratch. The model supplies
//   norm(i, dinp, dout, in, store)   dinp (=/+=) norm_i'(in)^T dout, weights' gradients +=
//   attn(dinp, dout, in, store)      likewise for the attention sub-layer
//   ffn(dinp, dout, in, store)       and the FFN; dinp may be dout with store = add
//                                    (dout is consumed before dinp is written)
template <class Norm, class Attn, class Ffn>
void block_backward(NormPosition where, const float* x, const BlockBuffers& b, float* dresid,
                    float* dresid2, float* dn, Norm&& norm, Attn&& attn, Ffn&& ffn) {
    const GradStore write = GradStore::overwrite, add = GradStore::add;
    if (where == NormPosition::pre) {
        ffn(dn, dresid, b.n2, write);      // xo = res1 + ffn(n2)
        norm(2, dresid, dn, b.res1, add);  // n2 = norm2(res1): dresid becomes dL/dres1
        attn(dn, dresid, b.n1, write);     // res1 = x + attn(n1)
        norm(1, dresid, dn, x, add);       // n1 = norm1(x): dresid becomes dL/dx
    } else {
        norm(2, dresid2, dresid, b.res2, write);  // xo = norm2(res2)
        ffn(dresid2, dresid2, b.n1, add);         // res2 = n1 + ffn(n1): dresid2 becomes dL/dn1
        norm(1, dresid, dresid2, b.res1, write);  // n1 = norm1(res1)
        attn(dresid, dresid, x, add);             // res1 = x + attn(x): dresid becomes dL/dx
    }
}

}  // namespace attnlab
