// attnlab: the command-line entry point. The subcommands live in src/cli/*_cmd.cpp.
#include <fmt/core.h>

#include "cli/commands.h"
#include "core/comm.h"
#include "core/error.h"

int main(int argc, char** argv) {
    CLI::App app{"attnlab: a laboratory for attention mechanisms"};
    app.require_subcommand(1);
    attnlab::add_train_commands(app);
    attnlab::add_task_commands(app);
    attnlab::add_check_commands(app);
    attnlab::add_report_commands(app);
    attnlab::add_generate_commands(app);
    attnlab::add_bench_commands(app);
    attnlab::add_sample_commands(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const attnlab::Error& e) {
        if (attnlab::Comm::active()) {  // under mpirun: the other ranks must not wait for this one
            const auto& w = attnlab::Comm::world();
            fmt::print(stderr, "error (MPI rank {} of {}): {}\n", w.rank(), w.size(), e.what());
            std::fflush(stderr);
            w.abort(2);
        }
        fmt::print(stderr, "error: {}\n", e.what());
        return 2;
    }
    return 0;
}
