// The iarc-paper recipes: every model about 1.5M parameters (within 10 %), as the
// task-switching paper compares models "of similar sizes (~1.5M parameters)".
#include <gtest/gtest.h>

#include <string>

#include "model/model.h"
#include "tasks/task.h"
#include "train/config.h"
#include "train/recipes.h"

namespace attnlab {
namespace {

TEST(IarcPaperRecipes, EveryModelHasAbout1_5MParameters) {
    for (const char* arch : {"transformer", "cisformer", "lstm", "mlp"}) {
        const std::string name = std::string("iarc-paper-") + arch;
        RunConfig cfg;
        apply_toml(cfg, find_recipe(name).toml, name);
        EXPECT_EQ(cfg.task.variant, "modifier") << name;
        resolve(cfg, make_task(cfg.task)->vocab());
        EXPECT_EQ(arch_name(cfg.model.arch), arch) << name;
        const size_t params = make_model(cfg.model, 1)->table().count();
        EXPECT_GE(params, 1350000u) << name;
        EXPECT_LE(params, 1650000u) << name;
    }
    // The matched cisformer is the low-rank form; the full one would be ~20x larger.
    RunConfig cis;
    apply_toml(cis, find_recipe("iarc-paper-cisformer").toml, "cisformer");
    EXPECT_GT(cis.model.cis_rank, 0);
}

}  // namespace
}  // namespace attnlab
