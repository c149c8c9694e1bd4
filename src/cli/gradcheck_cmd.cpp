// `attnlab gradcheck`: the finite-difference table of every kernel and model.
#include <fmt/core.h>

#include <algorithm>
#include <memory>

#include "cli/commands.h"
#include "core/error.h"
#include "kernels/attention.h"
#include "model/gradcheck.h"

namespace attnlab {

namespace {

int run_gradcheck(const std::string& map_filter, bool kernels_only) {
    if (map_filter != "all" && map_filter != "cogformer" && !attention_map_from_name(map_filter))
        throw Error("--map '" + map_filter +
                    "' is not valid; choose all, cogformer or one of: " + attention_map_names());
    auto results = run_kernel_gradchecks(map_filter);
    if (!kernels_only) {
        auto models = run_model_gradchecks(map_filter);
        results.insert(results.end(), models.begin(), models.end());
    }
    size_t wk = 6, wm = 3, wt = 12;  // column widths: the longest entry of each
    for (const auto& r : results)
        wk = std::max(wk, r.kernel.size()), wm = std::max(wm, r.map.size()),
        wt = std::max(wt, r.tensor.size());
    fmt::print("{:<{}}  {:<{}}  {:<{}} {:>10} {:>8} {:>5}\n", "kernel", wk, "map", wm,
               "worst tensor", wt, "max err", "tol", "ok");
    int failed = 0;
    for (const auto& r : results) {
        fmt::print("{:<{}}  {:<{}}  {:<{}} {:>10.2e} {:>8.0e} {:>5}\n", r.kernel, wk, r.map, wm,
                   r.tensor, wt, r.max_err, r.tol, r.ok() ? "ok" : "FAIL");
        failed += !r.ok();
    }
    fmt::print(
        "\n{} checks, {} failed. Error = max |analytic - numeric| / max |numeric| per tensor;\n"
        "numeric = 4-point central difference, best of several steps (float32).\n",
        results.size(), failed);
    return failed;
}

}  // namespace

void cmd_golden(const std::string& out_dir);       // golden.cpp
void cmd_golden_uvit(const std::string& out_dir);  // golden_uvit.cpp

void add_check_commands(CLI::App& app) {
    struct Args {
        std::string map = "all", golden_out;
        bool kernels_only = false;
    };
    auto a = std::make_shared<Args>();
    auto* gc = app.add_subcommand("gradcheck", "finite-difference check of every kernel and model");
    gc->add_option("--map", a->map, "all, cogformer or one attention map");
    gc->add_flag("--kernels-only", a->kernels_only, "skip the whole-model checks");
    gc->callback([a] {
        if (run_gradcheck(a->map, a->kernels_only) > 0) throw CLI::RuntimeError(1);
    });
    auto* golden = app.add_subcommand("golden", "write the cases for the PyTorch golden test");
    golden->add_option("--out", a->golden_out, "folder")->required();
    golden->callback([a] { cmd_golden(a->golden_out); });
    auto* golden_uvit =
        app.add_subcommand("golden-uvit", "write the U-ViT cases for the PyTorch golden test");
    golden_uvit->add_option("--out", a->golden_out, "folder")->required();
    golden_uvit->callback([a] { cmd_golden_uvit(a->golden_out); });
}

}  // namespace attnlab
