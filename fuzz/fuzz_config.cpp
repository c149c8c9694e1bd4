// libFuzzer harness: the configuration layer. The first byte picks the path:
// even = the input is a TOML document (apply_toml), odd = each line is a
// `--set key=value` (apply_setting). A configuration that resolves must survive
// a round trip through to_toml (what config.toml holds) unchanged.
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "core/error.h"
#include "train/config.h"

using namespace attnlab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    RunConfig cfg;
    try {
        if (data[0] % 2 == 0) {
            apply_toml(cfg, text, "fuzz.toml");
        } else {
            std::istringstream in(text);
            for (std::string line; std::getline(in, line);) apply_setting(cfg, line);
        }
    } catch (const Error&) {
        return 0;
    }
    if (cfg.task.name != "text") {  // resolving a text task would read its corpus file
        try {
            const auto task = make_task(cfg.task);
            resolve(cfg, task->vocab());
        } catch (const Error&) {
            return 0;
        }
    }
    // What to_toml writes (a run folder's config.toml) must read back as the same configuration.
    RunConfig back;
    try {
        apply_toml(back, to_toml(cfg), "round trip");
    } catch (const Error&) {
        std::abort();  // an accepted configuration that cannot be read back
    }
    for (const auto& k : config_keys())
        if (k.get(back) != k.get(cfg)) std::abort();
    return 0;
}
