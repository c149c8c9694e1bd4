// `attnlab golden --out DIR`: one folder per case with the initial checkpoint
// and everything the PyTorch reference recomputes: logits, loss, every
// gradient, the losses of 10 AdamW steps and the parameters after them; and
// one file of attention kernel cases (every map, causal and bidirectional).
#include "cli/golden.h"

#include <fmt/core.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "kernels/attention.h"
#include "model/model.h"
#include "train/optimizer.h"

namespace attnlab {

namespace {

struct Case {
    std::string name;
    ModelConfig cfg;
};

std::vector<Case> golden_cases() {
    std::vector<Case> cases;
    auto base = [] {
        ModelConfig c;
        c.vocab = 11, c.context = 8, c.dim = 16, c.heads = 4, c.layers = 3, c.ffn_mult = 2;
        return c;
    };
    const PosEncoding all_pos[] = {PosEncoding::learned, PosEncoding::sinusoidal, PosEncoding::rope,
                                   PosEncoding::alibi, PosEncoding::none};
    std::vector<std::string> specs;
    for (const auto& m : all_attention_maps()) specs.push_back(m.name);
    specs.push_back("cogformer");
    for (const auto& spec : specs)
        for (PosEncoding pos : all_pos) {
            ModelConfig c = base();
            c.pos = pos;
            c.attention = resolve_attention("model.attention", spec, c.layers);
            cases.push_back({"transformer-" + spec + "-" + pos_name(pos), c});
        }
    for (const auto& spec : specs) {
        ModelConfig post = base();
        post.attention = resolve_attention("model.attention", spec, post.layers);
        post.norm_position = NormPosition::post;
        post.norm = NormKind::rmsnorm;
        post.ffn_act = Activation::swiglu;
        cases.push_back({"transformer-" + spec + "-post-rmsnorm-swiglu", post});
        ModelConfig cis = base();
        cis.arch = Arch::cisformer;
        cis.attention = post.attention;
        cis.ffn_act = Activation::relu;
        cases.push_back({"cisformer-" + spec, cis});
    }
    ModelConfig cis_all = base();
    cis_all.arch = Arch::cisformer;
    cis_all.attention = resolve_attention("model.attention", "expressive", cis_all.layers);
    cis_all.cis_linears = {"qkv", "proj", "fc", "ffn_proj"};
    cis_all.pos = PosEncoding::rope;
    cases.push_back({"cisformer-expressive-all-maps-rope", cis_all});
    // The parameter-matched cisformer: W(t) = W + U(t) V(t) of rank 2 in every map.
    for (const char* spec : {"softmax", "extensive"}) {
        ModelConfig lowrank = cis_all;
        lowrank.attention = resolve_attention("model.attention", spec, lowrank.layers);
        lowrank.cis_rank = 2;
        lowrank.pos = PosEncoding::learned;
        cases.push_back({std::string("cisformer-") + spec + "-rank-2-all-maps", lowrank});
    }
    for (Arch arch : {Arch::lstm, Arch::mlp}) {
        ModelConfig c = base();
        c.arch = arch;
        c.layers = 2;
        c.window = arch == Arch::mlp ? 4 : 0;
        c.attention.clear();
        cases.push_back({arch_name(arch), c});
    }
    return cases;
}

void write_case(const std::string& dir, const Case& cs) {
    const int B = 3, T = cs.cfg.context, V = cs.cfg.vocab;
    auto model = make_model(cs.cfg, B);
    model->init_params(7);
    // Scale the init up so attention is far from uniform and every map shows its character.
    Rng rng(8);
    for (const auto& p : model->table().entries())
        if (p.init == Init::normal || p.init == Init::residual)
            for (size_t i = 0; i < p.size; i++) model->params()[p.offset + i] *= 10.0f;
    // The low-rank cisformer's U(t) starts at 0 (V's gradient would be 0 too): give it
    // values so every gradient is exercised from the first step.
    Rng u_rng(9);
    for (const auto& p : model->table().entries())
        if (p.name.ends_with(".pos_u"))
            for (size_t i = 0; i < p.size; i++)
                model->params()[p.offset + i] = float(0.2 * u_rng.normal());
    save_params(*model, dir + "/model.safetensors");

    std::vector<int32_t> inputs(size_t(B) * T), targets(inputs.size());
    std::vector<uint8_t> counted(inputs.size());
    for (size_t i = 0; i < inputs.size(); i++) {
        inputs[i] = int32_t(rng.below(uint32_t(V)));
        targets[i] = int32_t(rng.below(uint32_t(V)));
        counted[i] = rng.uniform() < 0.7;
    }
    const Batch batch{inputs.data(), targets.data(), counted.data(), B, T};
    AdamWConfig opt_cfg;
    opt_cfg.lr = 1e-2f, opt_cfg.warmup = 3, opt_cfg.total_steps = 10, opt_cfg.clip = 1.0f;
    Optimizer opt(opt_cfg, model->params().size());

    SafeTensorsWriter w;
    w.add("inputs", "I32", {B, T}, inputs.data(), inputs.size() * 4);
    w.add("targets", "I32", {B, T}, targets.data(), targets.size() * 4);
    w.add("counted", "U8", {B, T}, counted.data(), counted.size());
    std::vector<float> step_losses;
    for (int s = 0; s < 10; s++) {
        model->zero_grad();
        const LossResult r = model->forward(batch);
        model->backward(batch);
        step_losses.push_back(float(r.loss));
        if (s == 0) {
            w.add_f32("logits", {B, T, V}, model->logits());
            const float loss = float(r.loss);
            w.add_f32("loss", {1}, &loss);
            for (const auto& p : model->table().entries())
                w.add_f32("grad." + p.name, p.shape, model->grads().data() + p.offset);
        }
        opt.step(*model);
    }
    w.add_f32("step_losses", {10}, step_losses.data());
    for (const auto& p : model->table().entries())
        w.add_f32("final." + p.name, p.shape, model->params().data() + p.offset);
    nlohmann::ordered_json o{{"lr", opt_cfg.lr},
                             {"beta1", opt_cfg.beta1},
                             {"beta2", opt_cfg.beta2},
                             {"eps", opt_cfg.eps},
                             {"weight_decay", opt_cfg.weight_decay},
                             {"warmup", opt_cfg.warmup},
                             {"total_steps", opt_cfg.total_steps},
                             {"schedule", "cosine"},
                             {"min_lr_ratio", opt_cfg.min_lr_ratio},
                             {"clip", opt_cfg.clip}};
    w.set_metadata("format", "attnlab-1");
    w.set_metadata("kind", "golden");
    w.set_metadata("model", to_json(cs.cfg));
    w.set_metadata("optim", o.dump());
    w.write(dir + "/golden.safetensors");
}

}  // namespace

// T = 21 and hs = 8 leave a partial row block and padded vectors.
void write_attention_golden(const std::string& path, const std::vector<AttnMap>& maps) {
    const AttentionShape base{2, 21, 16, 2};
    const int B = base.B, T = base.T, C = base.C, H = base.H;
    const size_t nqkv = size_t(B) * T * 3 * C, nout = size_t(B) * T * C,
                 natt = size_t(B) * H * T * T;
    std::vector<float> slopes(static_cast<size_t>(H));
    std::vector<float> scratch(size_t(get_threads()) * attention_scratch_floats(base));
    alibi_slopes(slopes.data(), H);
    SafeTensorsWriter w;
    Rng rng(31);
    for (AttnMap map : maps)
        for (bool causal : {true, false})
            for (bool alibi : {false, true}) {
                AttentionShape sh = base;
                sh.causal = causal;
                std::vector<float> qkv(nqkv), dout(nout), out(nout), s(natt), wt(natt), dqkv(nqkv);
                for (auto& x : qkv) x = float(0.8 * rng.normal());
                for (auto& x : dout) x = float(rng.normal());
                attention_forward(out.data(), s.data(), wt.data(), scratch.data(), qkv.data(), map,
                                  alibi ? slopes.data() : nullptr, sh);
                attention_backward(dqkv.data(), scratch.data(), dout.data(), qkv.data(), s.data(),
                                   wt.data(), map, sh, GradStore::overwrite);
                const std::string p = std::string(map.info().name) +
                                      (causal ? ".causal" : ".bidirectional") +
                                      (alibi ? ".alibi." : ".plain.");
                w.add_f32(p + "qkv", {B, T, 3 * C}, qkv.data());
                w.add_f32(p + "dout", {B, T, C}, dout.data());
                w.add_f32(p + "out", {B, T, C}, out.data());
                w.add_f32(p + "weights", {B, H, T, T}, wt.data());
                w.add_f32(p + "dqkv", {B, T, 3 * C}, dqkv.data());
            }
    w.set_metadata("format", "attnlab-1");
    w.set_metadata("kind", "golden-attention");
    w.set_metadata("heads", std::to_string(H));
    w.write(path);
}

namespace {

void make_dir(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
        throw Error("cannot create folder '" + dir + "': " + std::strerror(errno));
}

}  // namespace

void cmd_golden(const std::string& out_dir) {
    make_dir(out_dir);
    int written = 0;
    for (const auto& cs : golden_cases()) {
        try {
            make_model(cs.cfg, 1);
        } catch (const Error& e) {
            fmt::print(stderr, "skipping {}: {}\n", cs.name, e.what());
            continue;
        }
        make_dir(out_dir + "/" + cs.name);
        write_case(out_dir + "/" + cs.name, cs);
        written++;
    }
    std::vector<AttnMap> maps;
    for (const auto& m : all_attention_maps()) maps.push_back(m.map);
    write_attention_golden(out_dir + "/attention.safetensors", maps);
    fmt::print("wrote {} golden cases and attention.safetensors to {}\n", written, out_dir);
}

}  // namespace attnlab
