// The subcommands of the `attnlab` binary. Each file in src/cli registers its
// subcommands on the CLI11 app with a callback that runs them; main.cpp only
// calls the add_* functions. Errors are thrown as attnlab::Error (exit 2);
// a command that fails a check throws CLI::RuntimeError(1).
#pragma once
#include <CLI/CLI.hpp>

namespace attnlab {

void add_train_commands(CLI::App& app);     // train, eval, recipes, config
void add_task_commands(CLI::App& app);      // task sample
void add_check_commands(CLI::App& app);     // gradcheck, golden
void add_report_commands(CLI::App& app);    // sweep, report, attention
void add_sweep_command(CLI::App& app);      // sweep (local, Slurm, MPI), sweep --status
void add_generate_commands(CLI::App& app);  // generate
void add_bench_commands(CLI::App& app);     // bench
void add_sample_commands(CLI::App& app);    // sample (diffusion runs)

}  // namespace attnlab
