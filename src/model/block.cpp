// The block's parameters in the arena and its linear maps (block.h).
#include "model/block.h"

#include <algorithm>

#include "core/profile.h"

namespace attnlab {

void add_into(float* out, const float* a, const float* b, size_t n) {
    const ProfileScope prof(KernelFamily::embedding);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void LinearRef::forward(float* out_, const float* inp, const float* P, int B, int T,
                        const LinearEpilogue& ep) const {
    if (!per_pos && !rank) return linear_forward(out_, inp, P + w, P + b, B * T, in, out, ep);
    if (per_pos) {
        linear_pos_forward(out_, inp, P + w, P + b, B, T, in, out);
    } else {
        linear_forward(out_, inp, P + w, P + b, B * T, in, out);
        linear_lowrank_pos_forward(out_, h, inp, P + u, P + v, B, T, in, out, rank);
    }
    if (ep.residual) add_into(out_, ep.residual, out_, size_t(B) * T * out);
    if (ep.act_out)
        activation_forward(ep.act, ep.act_out, out_, B * T,
                           ep.act == Activation::swiglu ? out / 2 : out);
}

void LinearRef::backward(float* dinp, float* G, const float* dout, const float* inp, const float* P,
                         int B, int T, GradStore store, const ActivationGrad& ag) const {
    if (!per_pos && !rank)
        return linear_backward(dinp, G + w, G + b, dout, inp, P + w, B * T, in, out, store, ag);
    if (per_pos) {
        linear_pos_backward(dinp, G + w, G + b, dout, inp, P + w, B, T, in, out, store);
    } else {
        linear_backward(dinp, G + w, G + b, dout, inp, P + w, B * T, in, out, store);
        linear_lowrank_pos_backward(dinp, G + u, G + v, dh, dout, h, inp, P + u, P + v, B, T, in,
                                    out, rank);
    }
    if (ag.pre) activation_backward(ag.act, ag.dpre, dinp, ag.pre, B * T, in, GradStore::overwrite);
}

void LinearRef::forward_at(float* y, const float* x, const float* P, int t) const {
    const size_t s = per_pos ? size_t(t) : 0;
    linear_forward(y, x, P + w + s * out * in, P + b + s * out, 1, in, out);
}

BlockShape block_shape(const ModelConfig& cfg) {
    BlockShape s;
    s.C = cfg.dim, s.F = cfg.ffn_mult * cfg.dim, s.act = cfg.ffn_act, s.norm = cfg.norm;
    s.T = cfg.context;
    if (cfg.arch != Arch::cisformer) return s;
    auto cis = [&](const char* name) {
        return std::find(cfg.cis_linears.begin(), cfg.cis_linears.end(), name) !=
               cfg.cis_linears.end();
    };
    s.rank = cfg.cis_rank;
    s.cis_qkv = cis("qkv"), s.cis_proj = cis("proj"), s.cis_fc = cis("fc");
    s.cis_ffn_proj = cis("ffn_proj");
    return s;
}

NormRef add_norm(ParamTable& table, const std::string& name, int C, NormKind norm) {
    NormRef n;
    n.w = table.add(name + ".weight", {C}, Init::ones);
    if (norm == NormKind::layernorm) n.b = table.add(name + ".bias", {C}, Init::zeros);
    return n;
}

LinearRef add_linear(ParamTable& table, const std::string& name, int in, int out, Init init,
                     bool per_pos, int64_t T, int rank) {
    LinearRef l;
    l.in = in, l.out = out, l.per_pos = per_pos && rank == 0;
    if (per_pos && rank > 0) {
        // W(t) = W + U(t) V(t): U starts at 0, so the model starts as the transformer.
        l.rank = rank;
        l.w = table.add(name + ".weight", {out, in}, init);
        l.b = table.add(name + ".bias", {out}, Init::zeros);
        l.u = table.add(name + ".pos_u", {T, out, rank}, Init::zeros);
        l.v = table.add(name + ".pos_v", {T, rank, in}, Init::normal);
    } else if (per_pos) {
        l.w = table.add(name + ".weight", {T, out, in}, init);
        l.b = table.add(name + ".bias", {T, out}, Init::zeros);
    } else {
        l.w = table.add(name + ".weight", {out, in}, init);
        l.b = table.add(name + ".bias", {out}, Init::zeros);
    }
    return l;
}

BlockRefs add_block(ParamTable& table, const std::string& p, const BlockShape& s, AttnMap map) {
    const int fc_width = s.act == Activation::swiglu ? 2 * s.F : s.F;
    BlockRefs r;
    r.map = map;
    r.norm1 = add_norm(table, p + "norm1", s.C, s.norm);
    r.qkv = add_linear(table, p + "attn.qkv", s.C, 3 * s.C, Init::normal, s.cis_qkv, s.T, s.rank);
    r.proj = add_linear(table, p + "attn.proj", s.C, s.C, Init::residual, s.cis_proj, s.T, s.rank);
    r.norm2 = add_norm(table, p + "norm2", s.C, s.norm);
    r.fc = add_linear(table, p + "ffn.fc", s.C, fc_width, Init::normal, s.cis_fc, s.T, s.rank);
    r.ffn_proj =
        add_linear(table, p + "ffn.proj", s.F, s.C, Init::residual, s.cis_ffn_proj, s.T, s.rank);
    return r;
}

NormRef find_norm(const ParamTable& table, const std::string& name, NormKind norm) {
    NormRef n;
    n.w = table.at(name + ".weight").offset;
    if (norm == NormKind::layernorm) n.b = table.at(name + ".bias").offset;
    return n;
}

LinearRef find_linear(const ParamTable& table, const std::string& name) {
    const ParamInfo& w = table.at(name + ".weight");
    LinearRef l;
    l.w = w.offset;
    l.b = table.at(name + ".bias").offset;
    l.per_pos = w.shape.size() == 3;
    l.out = int(w.shape[w.shape.size() - 2]);
    l.in = int(w.shape.back());
    return l;
}

BlockRefs find_block(const ParamTable& table, const std::string& p, NormKind norm, AttnMap map) {
    BlockRefs r;
    r.map = map;
    r.norm1 = find_norm(table, p + "norm1", norm);
    r.norm2 = find_norm(table, p + "norm2", norm);
    r.qkv = find_linear(table, p + "attn.qkv");
    r.proj = find_linear(table, p + "attn.proj");
    r.fc = find_linear(table, p + "ffn.fc");
    r.ffn_proj = find_linear(table, p + "ffn.proj");
    return r;
}

}  // namespace attnlab
