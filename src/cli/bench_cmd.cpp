// `attnlab bench`: training throughput, GFLOP/s against the measured sgemm peak,
// time per kernel family and memory of a recipe or configuration file.
#include <fmt/core.h>

#include <memory>

#include "cli/commands.h"
#include "core/error.h"
#include "train/bench.h"
#include "train/config.h"
#include "train/recipes.h"

namespace attnlab {

namespace {

struct BenchArgs {
    std::string recipe, config_file;
    std::vector<std::string> settings;
    int threads = 0;  // 0: the configuration's train.threads
    int steps = 30;
    int warmup = 3;
    int peak_n = 2048;
    bool no_profile = false, json = false;
};

void run(const BenchArgs& a) {
    if (a.recipe.empty() == a.config_file.empty())
        throw Error(
            "give exactly one of --recipe NAME or --config FILE (`attnlab recipes` lists "
            "the bench-r1 .. bench-r4 reference configurations)");
    RunConfig cfg;
    if (!a.recipe.empty()) apply_toml(cfg, find_recipe(a.recipe).toml, "recipe '" + a.recipe + "'");
    if (!a.config_file.empty()) apply_toml_file(cfg, a.config_file);
    for (const auto& s : a.settings) apply_setting(cfg, s);
    if (a.threads < 0) throw Error(fmt::format("--threads = {} must be >= 1", a.threads));
    if (a.threads > 0) cfg.train.threads = a.threads;
    BenchOptions opt;
    if (a.peak_n < 64 || a.peak_n > 8192)
        throw Error(fmt::format("--peak-n = {} must lie in 64..8192", a.peak_n));
    opt.steps = a.steps, opt.warmup = a.warmup, opt.profile = !a.no_profile;
    opt.peak_n = a.peak_n;
    const BenchResult r = run_bench(cfg, opt);
    fmt::print("{}", a.json ? bench_json(r) : format_bench(r));
}

}  // namespace

void add_bench_commands(CLI::App& app) {
    auto a = std::make_shared<BenchArgs>();
    auto* bench = app.add_subcommand(
        "bench",
        "time training steps: tokens/s, GFLOP/s against this machine's sgemm peak, "
        "time per kernel family, memory");
    bench->add_option("--recipe", a->recipe, "named recipe, e.g. bench-r1 (see `attnlab recipes`)");
    bench->add_option("--config", a->config_file, "TOML file with [model], [task], [train]");
    bench->add_option("--set", a->settings, "override one key, e.g. --set model.attention=cog")
        ->allow_extra_args(false);
    bench->add_option("--threads", a->threads,
                      "threads (default: the configuration's train.threads)");
    bench->add_option("--steps", a->steps, "timed training steps (default 30)");
    bench->add_option("--warmup", a->warmup, "untimed steps before timing (default 3)");
    bench->add_option("--peak-n", a->peak_n,
                      "size n of the n x n x n sgemm whose best rate is the peak (default 2048)");
    bench->add_flag("--no-profile", a->no_profile, "skip the second, profiled pass");
    bench->add_flag("--json", a->json, "print one JSON object");
    bench->callback([a] { run(*a); });
}

}  // namespace attnlab
