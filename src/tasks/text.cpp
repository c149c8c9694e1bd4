// The `text` task: windows of bytes drawn from a memory-mapped file, training
// windows from the first 90% and evaluation windows from the last 10%.
#include "tasks/text.h"

#include <fmt/format.h>

#include <cassert>

#include "core/error.h"
#include "tasks/options.h"

namespace attnlab {

size_t text_split_point(size_t size) {
    return size - size / 10;
}

TextTask::TextTask(std::shared_ptr<const MappedFile> file, TextSplit split)
    : file_(std::move(file)), split_(split) {
    const size_t cut = text_split_point(file_->size());
    begin_ = split == TextSplit::train ? 0 : cut;
    end_ = split == TextSplit::train ? cut : file_->size();
    if (split == TextSplit::train)
        validation_ = std::make_unique<TextTask>(file_, TextSplit::validation);
}

void TextTask::check_window(int T) const {
    const size_t size = file_->size(), need = size_t(T) + 1;
    const size_t valid = size / 10;  // the smaller part whenever size >= 10
    if (valid < need)
        throw Error(fmt::format(
            "task.path = \"{}\" is too short for windows of T = {}: it has {} bytes, and its "
            "validation part (the last 10%, {} bytes) must hold one window of T + 1 = {} bytes; "
            "use a file of at least {} bytes or a smaller train.context",
            file_->path(), T, size, valid, need, 10 * need));
}

void TextTask::sample(Rng& rng, int T, int32_t* tokens, uint8_t* counted, int8_t* label) const {
    const size_t len = size_t(T) + 1;
    assert(end_ - begin_ >= len);  // check_window ran before sampling
    // Uniform offset in [begin, end - len]: the high 64 bits of a 64 x 64-bit product
    // (bias below n / 2^64, so files beyond 4 GiB are covered evenly).
    const uint64_t n = end_ - begin_ - len + 1;
    const uint64_t pick = uint64_t((unsigned __int128)rng.next_u64() * n >> 64);
    const uint8_t* src = file_->data() + begin_ + pick;
    for (size_t i = 0; i < len; i++) tokens[i] = src[i];
    for (int t = 0; t < T; t++) counted[t] = 1, label[t] = 0;
}

std::string TextTask::token_text(int32_t token) const {
    if (token == ' ') return "_";  // a visible space in the aligned columns
    if (token == '_') return "\\x5f";
    if (token > ' ' && token < 127) return std::string(1, char(token));
    if (token == '\n') return "\\n";
    if (token == '\t') return "\\t";
    return fmt::format("\\x{:02x}", token);
}

std::unique_ptr<Task> make_text_task(const TaskConfig& cfg) {
    if (cfg.path.empty())
        task_options::fail("path", "\"\"",
                           "is empty: name a text file (the default corpus is data/kjv.txt)");
    std::shared_ptr<const MappedFile> file;
    try {
        file = std::make_shared<const MappedFile>(cfg.path, "task.path = \"" + cfg.path + "\"");
    } catch (const Error& e) {
        if (cfg.path != TaskConfig{}.path) throw;
        throw Error(std::string(e.what()) +
                    ". This is the default corpus, the King James Bible: `make corpus` (run in "
                    "the attnlab folder) writes it from the Debian package bible-kjv; or set "
                    "task.path to any text file");
    }
    return std::make_unique<TextTask>(std::move(file), TextSplit::train);
}

}  // namespace attnlab
