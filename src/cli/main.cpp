// attnlab: the command-line entry point; each subcommand is a thin wrapper
// over the library (see cli/commands.h and the train/ and tasks/ headers).
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "tasks/sample.h"
#include "train/config.h"
#include "train/recipes.h"
#include "train/trainer.h"

using namespace attnlab;

namespace {

RunConfig config_from(const std::string& recipe, const std::string& config_file,
                      const std::vector<std::string>& settings) {
    RunConfig cfg;
    if (!recipe.empty() && !config_file.empty())
        throw Error("give either --recipe or --config, not both");
    if (!recipe.empty()) apply_toml(cfg, find_recipe(recipe).toml, "recipe '" + recipe + "'");
    if (!config_file.empty()) apply_toml_file(cfg, config_file);
    for (const auto& s : settings) apply_setting(cfg, s);
    return cfg;
}

nlohmann::ordered_json eval_json(const EvalResult& r) {
    nlohmann::ordered_json j{{"accuracy", r.accuracy}, {"loss", r.loss}, {"counted", r.counted}};
    for (size_t i = 0; i < r.labels.size(); i++)
        j["per_task"][r.labels[i]] = {{"accuracy", r.label_accuracy[i]}, {"counted", r.label_counted[i]}};
    return j;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"attnlab: a laboratory for attention mechanisms"};
    app.require_subcommand(1);

    // train
    auto* train = app.add_subcommand("train", "train a model (new run or --resume)");
    std::string recipe, config_file, out_dir, resume_dir;
    std::vector<std::string> settings;
    bool force = false, quiet = false;
    long stop_after = 0;
    train->add_option("--recipe", recipe, "named recipe (see `attnlab recipes`)");
    train->add_option("--config", config_file, "TOML file with [model], [task], [train]");
    train->add_option("--set", settings, "override one key, e.g. --set model.layers=4")->allow_extra_args(false);
    train->add_option("--out", out_dir, "run folder (default runs/<recipe or config name>)");
    train->add_option("--resume", resume_dir, "continue the run in this folder");
    train->add_flag("--force", force, "overwrite the run files of a non-empty --out");
    train->add_flag("--quiet", quiet, "no progress output");
    train->add_option("--stop-after", stop_after, "stop with a checkpoint after this many steps (resume later)");

    // eval
    auto* eval = app.add_subcommand("eval", "re-evaluate a run's checkpoint on its evaluation set");
    std::string eval_run;
    int eval_windows = 0;
    bool eval_as_json = false;
    eval->add_option("--run", eval_run, "run folder")->required();
    eval->add_option("--windows", eval_windows, "evaluation windows (default: the run's train.eval_windows)");
    eval->add_flag("--json", eval_as_json, "print JSON");

    auto* recipes = app.add_subcommand("recipes", "list the named recipes");
    auto* config = app.add_subcommand("config", "show configuration keys");
    bool list_keys = false;
    std::string show_recipe;
    config->add_flag("--list", list_keys, "every key with its default and meaning");
    config->add_option("--recipe", show_recipe, "print the resolved TOML of a recipe");

    // task sample
    auto* task = app.add_subcommand("task", "inspect the task generators");
    auto* sample = task->add_subcommand("sample", "print generated windows");
    task->require_subcommand(1);
    std::string task_name = "iarc", format = "text";
    std::vector<std::string> task_settings;
    int windows = 3, context = 64;
    uint64_t seed = 1;
    sample->add_option("--task", task_name, "iarc | ladder | multitask");
    sample->add_option("--set", task_settings, "task option, e.g. --set task.n=8");
    sample->add_option("--windows", windows, "number of windows");
    sample->add_option("--context", context, "window length T");
    sample->add_option("--seed", seed, "seed");
    sample->add_option("--format", format, "jsonl | text");

    // gradcheck / golden
    auto* gradcheck = app.add_subcommand("gradcheck", "finite-difference check of every kernel and model");
    std::string map_filter = "all";
    bool kernels_only = false;
    gradcheck->add_option("--map", map_filter, "all, cogformer or one attention map");
    gradcheck->add_flag("--kernels-only", kernels_only, "skip the whole-model checks");
    auto* golden = app.add_subcommand("golden", "write the cases for the PyTorch golden test");
    std::string golden_out;
    golden->add_option("--out", golden_out, "folder")->required();

    CLI11_PARSE(app, argc, argv);
    try {
        if (*train) {
            TrainOptions opt;
            opt.force = force, opt.quiet = quiet;
            if (stop_after > 0) opt.stop_after = stop_after;
            if (!resume_dir.empty()) {
                if (!recipe.empty() || !config_file.empty())
                    throw Error("--resume takes its configuration from the run folder; drop --recipe/--config");
                const TrainSummary s = train_resume(resume_dir, settings, opt);
                fmt::print("{}", format_eval(s.eval));
                return 0;
            }
            RunConfig cfg = config_from(recipe, config_file, settings);
            opt.out_dir = !out_dir.empty() ? out_dir
                          : !recipe.empty() ? "runs/" + recipe
                                            : "runs/run";
            const TrainSummary s = train_new(cfg, opt);
            fmt::print("{}", format_eval(s.eval));
            fmt::print("run folder: {}  ({} steps, {:.1f} s, {:.0f} tokens/s)\n", opt.out_dir, s.steps,
                       s.wall_s, s.tokens_per_s);
        } else if (*eval) {
            LoadedRun run = load_run(eval_run);
            EvalSet set(*run.task, run.cfg.train.eval_seed,
                        eval_windows > 0 ? eval_windows : run.cfg.train.eval_windows, run.cfg.train.context);
            const EvalResult r = set.evaluate(*run.model);
            if (eval_as_json)
                fmt::print("{}\n", eval_json(r).dump(2));
            else
                fmt::print("{}", format_eval(r));
        } else if (*recipes) {
            for (const auto& r : all_recipes()) fmt::print("{:<16} {}\n", r.name, r.description);
        } else if (*config) {
            if (!show_recipe.empty()) {
                RunConfig cfg = config_from(show_recipe, "", {});
                fmt::print("{}", to_toml(cfg));
            } else {
                fmt::print("{}", describe_keys());
            }
        } else if (*sample) {
            RunConfig cfg;
            apply_setting(cfg, "task.name", task_name);
            for (const auto& s : task_settings) {
                if (s.rfind("task.", 0) != 0)
                    throw Error("--set '" + s + "': task sample takes task.* keys only");
                apply_setting(cfg, s);
            }
            if (context < 1) throw Error("--context must be >= 1");
            const auto t = make_task(cfg.task);
            write_samples(std::cout, *t, context, windows, seed, parse_sample_format(format));
        } else if (*gradcheck) {
            return cmd_gradcheck(map_filter, kernels_only) == 0 ? 0 : 1;
        } else if (*golden) {
            cmd_golden(golden_out);
        }
    } catch (const Error& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 2;
    }
    return 0;
}
