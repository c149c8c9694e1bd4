// Named recipes: ready-made configurations (`attnlab recipes` lists them).
#pragma once
#include <string>
#include <vector>

namespace attnlab {

struct Recipe {
    std::string name;
    std::string description;
    std::string toml;  // applied over the defaults
};

const std::vector<Recipe>& all_recipes();
// Throws Error listing the recipes if `name` is unknown.
const Recipe& find_recipe(const std::string& name);

}  // namespace attnlab
