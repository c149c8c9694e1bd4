// attnlab: the command-line entry point. The subcommands live in src/cli/*_cmd.cpp.
// Exit codes: 0 success, 1 a check failed, 2 any error (bad command line, bad input,
// failed file operation), each with one "error: ..." line on stderr.
#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "cli/commands.h"
#include "core/comm.h"
#include "core/error.h"
#include "core/parent_death.h"
#include "kernels/matmul.h"

namespace {

int run(int argc, char** argv) {
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
    } catch (const CLI::RuntimeError& e) {
        return e.get_exit_code();  // a command's own failed check (exit 1), already reported
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);  // prints help (code 0) or the parse error
        return code == 0 ? 0 : 2;
    }
    return 0;
}

// The message with every word (a run of characters without spaces, such as a path)
// longer than 200 characters cut to its first and last 80: a 5000-character file
// name would otherwise fill the terminal, and its middle says nothing.
std::string readable(const std::string& message) {
    constexpr size_t kLong = 200, kKeep = 80;
    std::string out;
    size_t i = 0;
    while (i < message.size()) {
        const size_t end = std::min(message.find(' ', i), message.size());
        const size_t n = end - i;
        if (n > kLong)
            out += message.substr(i, kKeep) +
                   fmt::format("[... {} characters ...]", n - 2 * kKeep) +
                   message.substr(end - kKeep, kKeep);
        else
            out += message.substr(i, n);
        if (end < message.size()) out += ' ';
        i = end + 1;
    }
    return out;
}

int fail(const std::string& full_message) {
    const std::string message = readable(full_message);
    if (attnlab::Comm::active()) {  // under mpirun: the other ranks must not wait for this one
        const auto& w = attnlab::Comm::world();
        fmt::print(stderr, "error (MPI rank {} of {}): {}\n", w.rank(), w.size(), message);
        std::fflush(stderr);
        w.abort(2);
    }
    fmt::print(stderr, "error: {}\n", message);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    attnlab::die_with_parent_if_asked();
    try {
        attnlab::matmul_block_name();  // an invalid ATTNLAB_GEMM fails here, before any work
        return run(argc, argv);
    } catch (const std::bad_alloc&) {
        return fail("out of memory (a size or count too large for this machine?)");
    } catch (const std::exception& e) {
        return fail(e.what());
    } catch (...) {
        return fail("unknown failure");
    }
}
