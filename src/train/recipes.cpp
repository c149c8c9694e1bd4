// The built-in recipes.
#include "train/recipes.h"

#include "core/error.h"

namespace attnlab {

namespace {

// Small demos, a minute or a few.
std::vector<Recipe> quick_recipes() {
    return {
        {"iarc-quick",
         "the demo: a 2-layer transformer on the IARC task-switching stream, about a minute",
         R"([model]
arch = "transformer"
attention = "softmax"
layers = 2
dim = 64
heads = 4
[task]
name = "iarc"
[train]
steps = 1500
batch = 32
context = 64
lr = 3e-3
warmup = 100
eval_every = 500
)"},
        {"ladder-quick",
         "a 2-layer transformer on the complexity ladder at K = 2, N = 16, under a minute",
         R"([model]
arch = "transformer"
attention = "softmax"
layers = 2
dim = 64
heads = 4
[task]
name = "ladder"
n = 16
k = 2
[train]
steps = 800
batch = 32
context = 32
lr = 3e-3
warmup = 50
eval_every = 200
)"},
        {"text-small",
         "a 4-layer byte-level transformer on the King James Bible (task text), a few minutes",
         R"([model]
arch = "transformer"
attention = "softmax"
layers = 4
dim = 128
heads = 4
pos = "rope"
[task]
name = "text"
[train]
steps = 2000
batch = 16
context = 128
lr = 2e-3
warmup = 100
eval_every = 500
eval_windows = 256
)"},
        // The task-switching paper's setting: the iarc modifier variant, every model
        // about 1.5M parameters (the paper's "similar sizes (~1.5M parameters)").
    };
}

// The IARC modifier comparison at about 1.5M parameters per architecture.
std::vector<Recipe> paper_recipes() {
    return {
        {"iarc-paper-transformer",
         "iarc (modifier): transformer, 4 layers, d 176 (1.52M parameters)",
         R"([model]
arch = "transformer"
attention = "softmax"
layers = 4
dim = 176
heads = 4
[task]
name = "iarc"
variant = "modifier"
[train]
steps = 2000
batch = 32
context = 64
lr = 1e-3
warmup = 100
eval_every = 500
)"},
        {"iarc-paper-cisformer",
         "iarc (modifier): cisformer W(t) = W + U(t) V(t), rank 1 in qkv and proj, 4 layers, d 160 "
         "(1.50M parameters)",
         R"([model]
arch = "cisformer"
attention = "softmax"
layers = 4
dim = 160
heads = 4
cis_linears = ["qkv", "proj"]
cis_rank = 1
[task]
name = "iarc"
variant = "modifier"
[train]
steps = 2000
batch = 32
context = 64
lr = 1e-3
warmup = 100
eval_every = 500
)"}};
}

// The recurrent and feed-forward baselines of the same comparison.
std::vector<Recipe> paper_baseline_recipes() {
    return {
        {"iarc-paper-lstm", "iarc (modifier): LSTM, 2 layers, hidden 304 (1.49M parameters)",
         R"([model]
arch = "lstm"
layers = 2
dim = 304
[task]
name = "iarc"
variant = "modifier"
[train]
steps = 2000
batch = 32
context = 64
lr = 1e-3
warmup = 100
eval_every = 500
)"},
        {"iarc-paper-mlp",
         "iarc (modifier): MLP over the whole window, embeddings 16, 2 hidden layers of 800 (1.48M "
         "parameters)",
         R"([model]
arch = "mlp"
layers = 2
dim = 16
hidden = 800
[task]
name = "iarc"
variant = "modifier"
[train]
steps = 2000
batch = 32
context = 64
lr = 1e-3
warmup = 100
eval_every = 500
)"},
        // Diffusion: the U-ViT on Fashion-MNIST (RESULTS.md, experiments/cog-diffusion.toml).
    };
}

// The U-ViT on Fashion-MNIST.
std::vector<Recipe> diffusion_recipes() {
    return {
        {"uvit-fmnist-quick",
         "a small U-ViT diffusion model on Fashion-MNIST, patch 4, a minute or two",
         R"([model]
arch = "uvit"
attention = "softmax"
layers = 5
dim = 64
heads = 4
ffn_mult = 2
patch = 4
[task]
name = "fmnist"
[train]
steps = 300
batch = 64
lr = 2e-3
warmup = 30
weight_decay = 0.03
eval_every = 100
eval_windows = 256
[diffusion]
sample_steps = 20
eval_samples = 200
)"},
        {"uvit-fmnist", "the U-ViT of the cog-diffusion experiment on Fashion-MNIST, patch 4",
         R"([model]
arch = "uvit"
attention = "softmax"
layers = 7
dim = 96
heads = 4
ffn_mult = 2
patch = 4
[task]
name = "fmnist"
[train]
steps = 4000
batch = 64
lr = 1e-3
warmup = 200
weight_decay = 0.03
eval_every = 500
eval_windows = 512
[diffusion]
sample_steps = 50
eval_samples = 1000
)"},
        // The reference configurations of `attnlab bench` and `make bench`
        // (docs/performance.md); all on iarc with N = 16, vocab 20.
    };
}

// The reference shapes of the speed benchmarks (docs/performance.md).
std::vector<Recipe> bench_recipes() {
    return {
        {"bench-r1", "benchmark R1: transformer, 2 layers, d 64, 4 heads, FFN 4x, T 64, batch 64",
         R"([model]
arch = "transformer"
attention = "softmax"
layers = 2
dim = 64
heads = 4
ffn_mult = 4
[task]
name = "iarc"
n = 16
[train]
steps = 2000
batch = 64
context = 64
lr = 3e-3
warmup = 100
)"},
        {"bench-r2", "benchmark R2: transformer, 4 layers, d 128, 4 heads, FFN 4x, T 128, batch 32",
         R"([model]
arch = "transformer"
attention = "softmax"
layers = 4
dim = 128
heads = 4
ffn_mult = 4
[task]
name = "iarc"
n = 16
[train]
steps = 2000
batch = 32
context = 128
lr = 1e-3
warmup = 100
)"},
        {"bench-r3", "benchmark R3: cisformer (position-specific qkv, proj) shaped as R1",
         R"([model]
arch = "cisformer"
attention = "softmax"
layers = 2
dim = 64
heads = 4
ffn_mult = 4
[task]
name = "iarc"
n = 16
[train]
steps = 2000
batch = 64
context = 64
lr = 3e-3
warmup = 100
)"},
        {"bench-r4", "benchmark R4: LSTM, 2 layers, hidden 128, T 64, batch 64",
         R"([model]
arch = "lstm"
layers = 2
dim = 128
[task]
name = "iarc"
n = 16
[train]
steps = 2000
batch = 64
context = 64
lr = 3e-3
warmup = 100
)"}};
}

}  // namespace

const std::vector<Recipe>& all_recipes() {
    static const std::vector<Recipe> recipes = [] {
        std::vector<Recipe> all;
        for (auto group : {quick_recipes, paper_recipes, paper_baseline_recipes, diffusion_recipes,
                           bench_recipes})
            for (auto& r : group()) all.push_back(std::move(r));
        return all;
    }();
    return recipes;
}

const Recipe& find_recipe(const std::string& name) {
    for (const auto& r : all_recipes())
        if (r.name == name) return r;
    std::string list;
    for (const auto& r : all_recipes()) list += (list.empty() ? "" : ", ") + r.name;
    throw Error("unknown recipe '" + name + "'; available: " + list);
}

}  // namespace attnlab
