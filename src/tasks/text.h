// The `text` task: byte-level language modelling on a file (vocabulary 256),
// memory-mapped, split by position into training and validation parts.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "core/mapped_file.h"
#include "tasks/task.h"

namespace attnlab {

// Which part of the file windows come from: the first 90% (train) or the last 10%
// (validation). The split point is size - size / 10; a window never crosses it.
enum class TextSplit { train, validation };

// Offset of the first validation byte of a file of `size` bytes.
size_t text_split_point(size_t size);

class TextTask final : public Task {
  public:
    // Windows from `split` of `file`. The training task owns a validation twin that
    // eval_task() returns, so the trainer's evaluation set is held-out text.
    TextTask(std::shared_ptr<const MappedFile> file, TextSplit split);

    std::string name() const override { return "text"; }
    int vocab() const override { return 256; }
    std::vector<std::string> label_names() const override { return {"text"}; }
    // T + 1 consecutive bytes from a uniform random offset of the part; every target
    // counted, label 0.
    void sample(Rng& rng, int T, int32_t* tokens, uint8_t* counted, int8_t* label) const override;
    // Printable ASCII as itself, except space as "_" and "_" as \x5f; others \n, \t or \xNN.
    std::string token_text(int32_t token) const override;
    // Both parts must hold a window of T + 1 bytes.
    void check_window(int T) const override;
    const Task& eval_task() const override { return validation_ ? *validation_ : *this; }
    bool byte_level() const override { return true; }

    TextSplit split() const { return split_; }
    size_t begin() const { return begin_; }  // the part is bytes [begin, end) of the file
    size_t end() const { return end_; }
    const MappedFile& file() const { return *file_; }

  private:
    std::shared_ptr<const MappedFile> file_;
    TextSplit split_;
    size_t begin_, end_;
    std::unique_ptr<TextTask> validation_;  // training task only
};

// Maps task.path (throws Error naming it if the file is missing, a folder, unreadable
// or empty) and builds the training task with its validation twin.
std::unique_ptr<Task> make_text_task(const TaskConfig& cfg);

}  // namespace attnlab
