// The built-in recipes.
#include "train/recipes.h"

#include "core/error.h"

namespace attnlab {

const std::vector<Recipe>& all_recipes() {
    static const std::vector<Recipe> recipes = {
        {"iarc-quick", "the demo: a 2-layer transformer on the IARC task-switching stream, about a minute",
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
        {"ladder-quick", "a 2-layer transformer on the complexity ladder at K = 2, N = 16, under a minute",
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
    };
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
