// Gradient checks of every kernel, one table (kernel_gradchecks) with each
// kernel's tolerance. Each check builds a scalar L = sum(out * R) with a fixed
// random R (so dout = R), runs the analytic backward once and compares it with
// central differences (gradcheck_harness.h). Inputs are drawn at scale ~1 so
// every path of every map is active (at the training init's tiny scores, e.g.
// `expressive` has nearly zero gradient).
#include <algorithm>
#include <cmath>

#include "core/gemm.h"
#include "core/rng.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/embedding.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "kernels/lstm.h"
#include "kernels/norm.h"
#include "kernels/window.h"
#include "model/config.h"
#include "model/gradcheck.h"
#include "model/gradcheck_harness.h"

namespace attnlab {

namespace {

using namespace gradcheck;

void check_linear(GradCheckResult& r, bool per_pos) {
    Rng rng(11);
    const int B = 2, T = 3, IC = 5, OC = 4;
    const int N = B * T;
    const size_t nw = size_t(per_pos ? T : 1) * OC * IC, nb = size_t(per_pos ? T : 1) * OC;
    Vec x = randn(rng, size_t(N) * IC), w = randn(rng, nw), b = randn(rng, nb);
    Vec R = randn(rng, size_t(N) * OC), out(size_t(N) * OC);
    Vec dx(x.size()), dw(w.size()), db(b.size());
    auto fwd = [&] {
        if (per_pos)
            linear_pos_forward(out.data(), x.data(), w.data(), b.data(), B, T, IC, OC);
        else
            linear_forward(out.data(), x.data(), w.data(), b.data(), N, IC, OC);
        return dot(out, R);
    };
    fwd();
    if (per_pos)
        linear_pos_backward(dx.data(), dw.data(), db.data(), R.data(), x.data(), w.data(), B, T, IC,
                            OC);
    else
        linear_backward(dx.data(), dw.data(), db.data(), R.data(), x.data(), w.data(), N, IC, OC);
    compare(r,
            {{"inp", x.data(), x.size(), dx.data()},
             {"weight", w.data(), w.size(), dw.data()},
             {"bias", b.data(), b.size(), db.data()}},
            fwd, kKernelSteps);
}

// The low-rank per-position correction on its own: out = inp V(t)^T U(t)^T (out
// starts at 0, the kernel adds into it), every input and both factors probed.
void check_linear_lowrank(GradCheckResult& r) {
    Rng rng(17);
    const int B = 2, T = 3, IC = 5, OC = 4, R = 2;
    const int N = B * T;
    Vec x = randn(rng, size_t(N) * IC), u = randn(rng, size_t(T) * OC * R);
    Vec v = randn(rng, size_t(T) * R * IC), Rw = randn(rng, size_t(N) * OC);
    Vec out(size_t(N) * OC), h(size_t(N) * R), dh(h.size());
    Vec dx(x.size()), du(u.size()), dv(v.size());
    auto fwd = [&] {
        std::fill(out.begin(), out.end(), 0.0f);
        linear_lowrank_pos_forward(out.data(), h.data(), x.data(), u.data(), v.data(), B, T, IC, OC,
                                   R);
        return dot(out, Rw);
    };
    fwd();
    linear_lowrank_pos_backward(dx.data(), du.data(), dv.data(), dh.data(), Rw.data(), h.data(),
                                x.data(), u.data(), v.data(), B, T, IC, OC, R);
    compare(r,
            {{"inp", x.data(), x.size(), dx.data()},
             {"u", u.data(), u.size(), du.data()},
             {"v", v.data(), v.size(), dv.data()}},
            fwd, kKernelSteps);
}

void check_norm(GradCheckResult& r, NormKind kind) {
    Rng rng(12);
    const int N = 6, C = 8;
    Vec x = randn(rng, size_t(N) * C), w = randn(rng, C), b = randn(rng, C);
    Vec R = randn(rng, size_t(N) * C), out(x.size()), mean(N), rstd(N);
    Vec dx(x.size()), dw(C), db(C);
    auto fwd = [&] {
        if (kind == NormKind::layernorm)
            layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N,
                              C);
        else
            rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C);
        return dot(out, R);
    };
    fwd();
    if (kind == NormKind::layernorm)
        layernorm_backward(dx.data(), dw.data(), db.data(), R.data(), x.data(), w.data(),
                           mean.data(), rstd.data(), N, C);
    else
        rmsnorm_backward(dx.data(), dw.data(), R.data(), x.data(), w.data(), rstd.data(), N, C);
    std::vector<Probe> probes{{"inp", x.data(), x.size(), dx.data()},
                              {"weight", w.data(), w.size(), dw.data()}};
    if (kind == NormKind::layernorm) probes.push_back({"bias", b.data(), b.size(), db.data()});
    compare(r, probes, fwd, kKernelSteps);
}

void check_activation(GradCheckResult& r, Activation act) {
    Rng rng(13);
    const int N = 6, F = 7;
    const size_t nin = size_t(N) * F * (act == Activation::swiglu ? 2 : 1);
    Vec x = randn(rng, nin), R = randn(rng, size_t(N) * F), out(size_t(N) * F), dx(nin);
    // Keep ReLU inputs away from its kink at 0, where no difference quotient converges.
    if (act == Activation::relu)
        for (auto& v : x) v = v >= 0 ? v + 0.1f : v - 0.1f;
    auto fwd = [&] {
        if (act == Activation::gelu) gelu_forward(out.data(), x.data(), long(nin));
        if (act == Activation::relu) relu_forward(out.data(), x.data(), long(nin));
        if (act == Activation::swiglu) swiglu_forward(out.data(), x.data(), N, F);
        return dot(out, R);
    };
    fwd();
    if (act == Activation::gelu) gelu_backward(dx.data(), R.data(), x.data(), long(nin));
    if (act == Activation::relu) relu_backward(dx.data(), R.data(), x.data(), long(nin));
    if (act == Activation::swiglu) swiglu_backward(dx.data(), R.data(), x.data(), N, F);
    compare(r, {{"inp", x.data(), x.size(), dx.data()}}, fwd, kKernelSteps);
}

void check_embedding(GradCheckResult& r) {
    Rng rng(14);
    const int B = 2, T = 4, C = 3, V = 5;
    std::vector<int32_t> tok(size_t(B) * T);
    for (auto& t : tok) t = int32_t(rng.below(V));
    Vec te = randn(rng, size_t(V) * C), pe = randn(rng, size_t(T) * C);
    Vec R = randn(rng, size_t(B) * T * C), out(R.size()), dte(te.size()), dpe(pe.size());
    auto fwd = [&] {
        embedding_forward(out.data(), tok.data(), te.data(), pe.data(), nullptr, B, T, C);
        return dot(out, R);
    };
    fwd();
    embedding_backward(dte.data(), dpe.data(), R.data(), tok.data(), B, T, C, V);
    compare(r,
            {{"tok_emb", te.data(), te.size(), dte.data()},
             {"pos_emb", pe.data(), pe.size(), dpe.data()}},
            fwd, kKernelSteps);
}

void check_rope(GradCheckResult& r) {
    Rng rng(15);
    const int B = 2, T = 5, C = 8, H = 2;
    Vec cs(size_t(T) * C / H / 2), sn(cs.size());
    rope_tables(cs.data(), sn.data(), T, C / H);
    Vec x = randn(rng, size_t(B) * T * 3 * C), R = randn(rng, x.size()), out(x.size()),
        dx(x.size());
    auto fwd = [&] {
        rope_forward(out.data(), x.data(), cs.data(), sn.data(), B, T, C, H);
        return dot(out, R);
    };
    fwd();
    rope_backward(dx.data(), R.data(), cs.data(), sn.data(), B, T, C, H);
    compare(r, {{"qkv", x.data(), x.size(), dx.data()}}, fwd, kKernelSteps);
}

void check_attention(GradCheckResult& r, AttnMap map, bool alibi, bool causal) {
    Rng rng(16 + map.id());
    const AttentionShape sh{2, 6, 8, 2, causal};
    const size_t nqkv = size_t(sh.B) * sh.T * 3 * sh.C, nout = size_t(sh.B) * sh.T * sh.C;
    const size_t natt = size_t(sh.B) * sh.H * sh.T * sh.T;
    Vec qkv = randn(rng, nqkv, 0.8), R = randn(rng, nout), out(nout), s(natt), w(natt), dqkv(nqkv);
    Vec slopes(sh.H), scratch(size_t(get_threads()) * attention_scratch_floats(sh));
    alibi_slopes(slopes.data(), sh.H);
    auto fwd = [&] {
        attention_forward(out.data(), s.data(), w.data(), scratch.data(), qkv.data(), map,
                          alibi ? slopes.data() : nullptr, sh);
        return dot(out, R);
    };
    fwd();
    attention_backward(dqkv.data(), scratch.data(), R.data(), qkv.data(), s.data(), w.data(), map,
                       sh);
    compare(r, {{"qkv", qkv.data(), qkv.size(), dqkv.data()}}, fwd, kKernelSteps, 400,
            [&] { return sign_pattern(w.data(), w.size()); });
}

void check_cross_entropy(GradCheckResult& r) {
    Rng rng(17);
    const int N = 6, V = 5;
    Vec logits = randn(rng, size_t(N) * V), probs(logits.size()), rl(N), dl(logits.size());
    std::vector<int32_t> tgt(N);
    std::vector<uint8_t> counted(N), correct(N);
    for (int i = 0; i < N; i++)
        tgt[size_t(i)] = int32_t(rng.below(V)), counted[size_t(i)] = i % 3 != 0;
    auto fwd = [&] {
        return cross_entropy_forward(probs.data(), rl.data(), correct.data(), logits.data(),
                                     tgt.data(), counted.data(), N, V)
            .loss;
    };
    const long n = cross_entropy_forward(probs.data(), rl.data(), correct.data(), logits.data(),
                                         tgt.data(), counted.data(), N, V)
                       .counted;
    cross_entropy_backward(dl.data(), probs.data(), tgt.data(), counted.data(), n, N, V);
    compare(r, {{"logits", logits.data(), logits.size(), dl.data()}}, fwd, kKernelSteps);
}

// The LSTM layer, every entry of every input against L = sum(h * R): the gradient
// flows through h_t directly, through h_t -> a_{t+1} (the recurrent gemm) and
// through c_t -> c_{t+1} (the cell carry).
void check_lstm(GradCheckResult& r) {
    Rng rng(3);
    const int B = 2, T = 5, IC = 4, C = 3, G = 4 * C;
    const size_t N = size_t(B) * T;
    Vec x = randn(rng, N * IC), w_ih = randn(rng, size_t(G) * IC, 0.5);
    Vec w_hh = randn(rng, size_t(G) * C, 0.5), bias = randn(rng, G, 0.5);
    const Vec R = randn(rng, N * C);
    Vec h(N * C), c(N * C), th(N * C), gates(N * G);
    auto fwd = [&] {
        lstm_forward(h.data(), c.data(), th.data(), gates.data(), x.data(), w_ih.data(),
                     w_hh.data(), bias.data(), B, T, IC, C);
        return dot(h, R);
    };
    fwd();
    Vec dx(x.size()), dwi(w_ih.size()), dwh(w_hh.size()), db(bias.size());
    Vec dgates(N * G), dc(N * C), dh = R;
    lstm_backward(dx.data(), dwi.data(), dwh.data(), db.data(), dgates.data(), dc.data(), dh.data(),
                  x.data(), h.data(), c.data(), th.data(), gates.data(), w_ih.data(), w_hh.data(),
                  B, T, IC, C);
    compare(r,
            {{"inp", x.data(), x.size(), dx.data()},
             {"weight_ih", w_ih.data(), w_ih.size(), dwi.data()},
             {"weight_hh", w_hh.data(), w_hh.size(), dwh.data()},
             {"bias", bias.data(), bias.size(), db.data()}},
            fwd, kKernelSteps);
}

// The MLP's window concatenation, every entry, for windows 1, 3 and 7 (longer than T).
void check_window_concat(GradCheckResult& r) {
    Rng rng(4);
    for (int W : {1, 3, 7}) {
        const int B = 2, T = 5, C = 3;
        Vec x = randn(rng, size_t(B) * T * C);
        const Vec R = randn(rng, size_t(B) * T * W * C);
        Vec out(R.size()), dx(x.size());
        auto fwd = [&] {
            window_concat_forward(out.data(), x.data(), B, T, W, C);
            return dot(out, R);
        };
        fwd();
        window_concat_backward(dx.data(), R.data(), B, T, W, C);
        compare(r, {{"inp/W=" + std::to_string(W), x.data(), x.size(), dx.data()}}, fwd,
                kKernelSteps);
    }
}

bool wanted(const std::string& filter, AttnMap m) {
    return filter == "all" || filter == attention_map_info(m).name;
}

}  // namespace

// Every kernel's check, registered once with its tolerance: kernels without a map
// always, the attention kernel for every map of the registry that passes the
// filter, causal and bidirectional, with and without ALiBi.
std::vector<GradCheck> kernel_gradchecks(const std::string& filter) {
    std::vector<GradCheck> t{
        {"linear", "-", 1e-3, [](GradCheckResult& r) { check_linear(r, false); }},
        {"linear_pos", "-", 1e-3, [](GradCheckResult& r) { check_linear(r, true); }},
        {"linear_lowrank_pos", "-", 1e-3, check_linear_lowrank},
        {"layernorm", "-", 2e-3, [](GradCheckResult& r) { check_norm(r, NormKind::layernorm); }},
        {"rmsnorm", "-", 2e-3, [](GradCheckResult& r) { check_norm(r, NormKind::rmsnorm); }},
        {"gelu", "-", 1e-3, [](GradCheckResult& r) { check_activation(r, Activation::gelu); }},
        {"relu", "-", 1e-3, [](GradCheckResult& r) { check_activation(r, Activation::relu); }},
        {"swiglu", "-", 1e-3, [](GradCheckResult& r) { check_activation(r, Activation::swiglu); }},
        {"embedding", "-", 1e-3, check_embedding},
        {"rope", "-", 1e-3, check_rope},
        {"cross_entropy", "-", 1e-3, check_cross_entropy},
        // The recurrent kernels' gradients are exact to float32 rounding at these sizes.
        {"lstm", "-", 3e-4, check_lstm},
        {"window_concat", "-", 2e-5, check_window_concat},
    };
    for (const auto& m : all_attention_maps()) {
        if (!wanted(filter, m.map)) continue;
        for (bool causal : {true, false})
            for (bool alibi : {false, true}) {
                const std::string kernel =
                    std::string(causal ? "attention" : "attention/bidir") + (alibi ? "+alibi" : "");
                const AttnMap map = m.map;
                t.push_back({kernel, m.name, 3e-3,
                             [=](GradCheckResult& r) { check_attention(r, map, alibi, causal); }});
            }
    }
    return t;
}

std::vector<GradCheckResult> run_kernel_gradchecks(const std::string& filter) {
    ThreadScope one_thread(1);
    std::vector<GradCheckResult> out;
    for (const auto& c : kernel_gradchecks(filter)) out.push_back(c.run());
    return out;
}

}  // namespace attnlab
