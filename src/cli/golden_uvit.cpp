// `attnlab golden-uvit --out DIR`: the U-ViT's golden cases for the PyTorch
// reference (tests/python/test_golden_uvit.py): the initial checkpoint, one batch
// of noisy images, the predicted noise, the MSE, every gradient, the losses of 10
// AdamW steps and the parameters after them.
#include <fmt/core.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "model/model.h"
#include "model/uvit.h"
#include "train/optimizer.h"

namespace attnlab {

namespace {

struct UViTCase {
    std::string name;
    ModelConfig cfg;
};

std::vector<UViTCase> uvit_cases() {
    auto make = [](const std::string& spec, int layers, int image, int patch) {
        ModelConfig c;
        c.arch = Arch::uvit, c.vocab = 3, c.dim = 16, c.heads = 4, c.ffn_mult = 2;
        c.layers = layers, c.image = image, c.patch = patch, c.context = uvit_tokens(c);
        c.attention = resolve_attention("model.attention", spec, layers);
        return c;
    };
    std::vector<UViTCase> cases;
    for (const auto& m : all_attention_maps())
        cases.push_back({std::string("uvit-") + m.name, make(m.name, 3, 8, 4)});
    cases.push_back({"uvit-cogformer-5-blocks-patch2", make("cogformer", 5, 8, 2)});
    cases.push_back({"uvit-softmax-5-blocks-patch2", make("softmax", 5, 8, 2)});
    return cases;
}

void write_uvit_case(const std::string& dir, const ModelConfig& cfg) {
    const int B = 4;
    UViT model(cfg, B);
    model.init_params(7);
    // Scale the init up so attention is far from uniform and every map shows its character.
    for (const auto& p : model.table().entries())
        if (p.init == Init::normal || p.init == Init::residual)
            for (size_t i = 0; i < p.size; i++) model.params()[p.offset + i] *= 10.0f;
    save_table_params(cfg, model.table(), model.params(), dir + "/model.safetensors");
    Rng rng(8);
    const int npx = model.pixels();
    std::vector<float> x(size_t(B) * npx), target(x.size());
    std::vector<int32_t> t(B), y(B);
    for (auto& v : x) v = float(rng.normal());
    for (auto& v : target) v = float(rng.normal());
    for (int b = 0; b < B; b++)
        t[size_t(b)] = int32_t(rng.below(1000)), y[size_t(b)] = b % (cfg.vocab + 1);
    const ImageBatch batch{x.data(), t.data(), y.data(), target.data(), B};
    AdamWConfig opt_cfg;
    opt_cfg.lr = 1e-2f, opt_cfg.warmup = 3, opt_cfg.total_steps = 10, opt_cfg.clip = 1.0f;
    Optimizer opt(opt_cfg, model.params().size());
    SafeTensorsWriter w;
    w.add_f32("x", {B, npx}, x.data());
    w.add("t", "I32", {B}, t.data(), t.size() * 4);
    w.add("y", "I32", {B}, y.data(), y.size() * 4);
    w.add_f32("target", {B, npx}, target.data());
    std::vector<float> step_losses;
    for (int s = 0; s < 10; s++) {
        model.zero_grad();
        const float loss = float(model.forward(batch));
        model.backward(batch);
        step_losses.push_back(loss);
        if (s == 0) {
            w.add_f32("pred", {B, npx}, model.prediction());
            w.add_f32("loss", {1}, &loss);
            for (const auto& p : model.table().entries())
                w.add_f32("grad." + p.name, p.shape, model.grads().data() + p.offset);
        }
        opt.step(model.table(), model.params(), model.grads());
    }
    w.add_f32("step_losses", {10}, step_losses.data());
    for (const auto& p : model.table().entries())
        w.add_f32("final." + p.name, p.shape, model.params().data() + p.offset);
    const nlohmann::ordered_json o{{"lr", opt_cfg.lr},
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
    w.set_metadata("kind", "golden-uvit");
    w.set_metadata("model", to_json(cfg));
    w.set_metadata("optim", o.dump());
    w.write(dir + "/golden.safetensors");
}

}  // namespace

void cmd_golden_uvit(const std::string& out_dir) {
    if (::mkdir(out_dir.c_str(), 0755) != 0 && errno != EEXIST)
        throw Error("cannot create folder '" + out_dir + "': " + std::strerror(errno));
    int written = 0;
    for (const auto& cs : uvit_cases()) {
        const std::string dir = out_dir + "/" + cs.name;
        if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
            throw Error("cannot create folder '" + dir + "': " + std::strerror(errno));
        write_uvit_case(dir, cs.cfg);
        written++;
    }
    fmt::print("wrote {} U-ViT golden cases to {}\n", written, out_dir);
}

}  // namespace attnlab
