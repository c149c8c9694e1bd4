// The run configuration: sections [model], [task], [train], every key with its
// default and meaning in one table (`attnlab config --list`), read from TOML
// and `--set key=value`, unknown keys and bad values rejected by name.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/adamw.h"
#include "model/config.h"
#include "tasks/task.h"

namespace attnlab {

struct TrainConfig {
    int steps = 2000;                 // optimizer steps
    int batch = 32;                   // windows per step
    int context = 64;                 // window length T
    float lr = 1e-3f;                 // peak learning rate
    uint64_t seed = 1;                // model init and training data
    int threads = 0;                  // OpenMP/OpenBLAS threads (0 = all cores)
    int warmup = 100;                 // linear warm-up steps
    std::string schedule = "cosine";  // cosine | constant
    float min_lr_ratio = 0.1f;        // cosine floor as a fraction of lr
    float weight_decay = 0.1f;        // decoupled, matrices only
    float beta1 = 0.9f, beta2 = 0.95f;
    float clip = 1.0f;             // global gradient-norm clip (0 = off)
    int eval_every = 250;          // steps between evaluations (0 = only at the end)
    int eval_windows = 512;        // size of the fixed evaluation set
    uint64_t eval_seed = 1000003;  // seed of the evaluation set (same for every run by default)
    int log_every = 50;            // steps between metrics rows / log lines
    int checkpoint_every = 0;      // steps between checkpoints (0 = at every evaluation)
};

// [diffusion]: denoising training of the U-ViT (model.arch = "uvit", task.name =
// "fmnist") and its evaluation by generated samples.
struct DiffusionConfig {
    float label_dropout =
        0.1f;                 // training images whose class is dropped (classifier-free guidance)
    int sample_steps = 50;    // DDIM steps of the evaluation's samples
    float guidance = 2.0f;    // g in eps_u + g (eps_c - eps_u) at evaluation (1 = no guidance)
    int eval_samples = 1000;  // generated images for the FID, an equal share per class
    int train_images = 0;     // training images used (0 = all 60,000; tests use a few)
    std::string classifier =
        "data/fmnist-classifier.safetensors";  // the FID's feature network, trained when missing
};

struct RunConfig {
    ModelConfig model;
    std::string attention = "softmax";  // as given: a map, a per-layer list or a preset
    TaskConfig task;
    TrainConfig train;
    DiffusionConfig diffusion;
};

// The token models' tasks and the U-ViT's image data set (fmnist).
std::vector<std::string> all_task_names();

struct ConfigKey {
    std::string name;                                         // "section.key"
    std::string doc;                                          // meaning and valid values
    std::function<void(RunConfig&, const std::string&)> set;  // parses and checks one value
    std::function<std::string(const RunConfig&)> get;         // as a TOML literal
};

const std::vector<ConfigKey>& config_keys();

// Applies "key=value"; throws Error naming the key and what is valid.
void apply_setting(RunConfig& cfg, const std::string& assignment);
void apply_setting(RunConfig& cfg, const std::string& key, const std::string& value);
// Reads a TOML document (file contents) into cfg; `origin` names it in errors.
void apply_toml(RunConfig& cfg, const std::string& toml_text, const std::string& origin);
void apply_toml_file(RunConfig& cfg, const std::string& path);
inline constexpr size_t kMaxConfigBytes = size_t(1) << 20;  // configs and grids: 1 MiB at most

// Fills the derived fields (model.context, model.attention, model.vocab from the
// task) and validates everything; throws Error on the first problem.
void resolve(RunConfig& cfg, int task_vocab);

// The resolved configuration as TOML (every key, with its value).
std::string to_toml(const RunConfig& cfg);
// `attnlab config --list`: every key, its default and meaning.
std::string describe_keys();
// The [model] keys as a markdown table (key, default, meaning): docs/models.md's
// option table, which a test keeps equal to this output.
std::string describe_model_keys_markdown();

AdamWConfig adamw_config(const TrainConfig& t);

}  // namespace attnlab
