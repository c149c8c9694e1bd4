// What all architectures share: parameter init, checkpoints, the factory.
#include "model/model.h"

#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "model/architectures.h"

namespace attnlab {

void Model::allocate_params() {
    params_.resize(table_.total());
    grads_.resize(table_.total());
    correct_.assign(size_t(max_batch_) * cfg_.context, 0);
}

void Model::init_params(uint64_t seed) {
    init_table_params(table_, params_, seed, cfg_.layers);
}

void init_table_params(const ParamTable& table, Buffer& params, uint64_t seed, int layers) {
    Rng rng(seed);
    const double residual_std = 0.02 / std::sqrt(2.0 * layers);
    params.zero();
    for (const auto& p : table.entries()) {
        float* x = params.data() + p.offset;
        for (size_t i = 0; i < p.size; i++) {
            switch (p.init) {
                case Init::normal:
                    x[i] = float(0.02 * rng.normal());
                    break;
                case Init::residual:
                    x[i] = float(residual_std * rng.normal());
                    break;
                case Init::zeros:
                    x[i] = 0.0f;
                    break;
                case Init::ones:
                    x[i] = 1.0f;
                    break;
                case Init::forget_bias:
                    x[i] = i / (p.size / 4) == 1 ? 1.0f : 0.0f;
                    break;
            }
        }
    }
}

std::unique_ptr<Model> make_model(const ModelConfig& cfg, int max_batch) {
    validate(cfg);
    if (max_batch < 1) throw Error("train.batch = " + std::to_string(max_batch) + " must be >= 1");
    switch (cfg.arch) {
        case Arch::transformer:
        case Arch::cisformer:
            return make_transformer(cfg, max_batch);
        case Arch::lstm:
            return make_lstm(cfg, max_batch);
        case Arch::mlp:
            return make_mlp(cfg, max_batch);
        case Arch::uvit:
            throw Error(
                "model.arch = 'uvit' is a diffusion model over images, not a token model; "
                "it trains with task.name = 'fmnist'");
    }
    throw Error("unknown architecture");
}

void save_params(const Model& model, const std::string& path,
                 const std::vector<std::pair<std::string, std::string>>& extra_metadata) {
    save_table_params(model.config(), model.table(), model.params(), path, extra_metadata);
}

void save_table_params(const ModelConfig& cfg, const ParamTable& table, const Buffer& params,
                       const std::string& path,
                       const std::vector<std::pair<std::string, std::string>>& extra_metadata) {
    SafeTensorsWriter w;
    w.set_metadata("format", "attnlab-1");
    w.set_metadata("kind", "params");
    w.set_metadata("model", to_json(cfg));
    for (const auto& [k, v] : extra_metadata) w.set_metadata(k, v);
    for (const auto& p : table.entries()) w.add_f32(p.name, p.shape, params.data() + p.offset);
    w.write(path);
}

void load_params(Model& model, const std::string& path) {
    load_table_params(model.table(), model.params(), path);
}

void load_table_params(const ParamTable& table, Buffer& params, const std::string& path) {
    SafeTensorsFile f(path);
    for (const auto& p : table.entries()) {
        const float* src = f.f32(p.name, p.shape);
        std::copy(src, src + p.size, params.data() + p.offset);
    }
    for (const auto& e : f.tensors())
        if (!table.find(e.name))
            throw Error("'" + path + "' holds tensor '" + e.name +
                        "', which this model does not have (a checkpoint of another model?)");
}

}  // namespace attnlab
