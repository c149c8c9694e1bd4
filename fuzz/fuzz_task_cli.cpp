// libFuzzer harness: the `attnlab task sample` command line. The input is split
// at newlines into arguments after `attnlab task sample`; parse errors
// (CLI::ParseError) and attnlab::Error are the acceptable outcomes. The samples
// go to a discarding stream.
#include <cstdint>
#include <iostream>
#include <sstream>
#include <streambuf>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/error.h"

namespace {

struct NullBuffer : std::streambuf {
    int overflow(int c) override { return c; }
    std::streamsize xsputn(const char*, std::streamsize n) override { return n; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<std::string> args{"attnlab", "task", "sample"};
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    for (std::string a; std::getline(in, a);) args.push_back(a);
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    static NullBuffer null;
    std::streambuf* const old = std::cout.rdbuf(&null);
    CLI::App app{"attnlab"};
    attnlab::add_task_commands(app);
    try {
        app.parse(int(argv.size()), argv.data());
    } catch (const CLI::ParseError&) {
    } catch (const attnlab::Error&) {
    }
    std::cout.rdbuf(old);
    return 0;
}
