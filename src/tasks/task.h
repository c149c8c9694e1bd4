// The task interface: a task is an endless, seeded generator of token windows
// with a counted flag and a task label per target (see docs/tasks.md).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"

namespace attnlab {

// Options of every task; which ones a task reads is documented per field.
// Defaults follow docs/tasks.md.
struct TaskConfig {
    std::string name = "iarc";   // iarc | ladder | multitask | text
    int n = 16;                  // data alphabet size N
    int k = 2;                   // ladder level K (1..8): delays 1, 2, 4, ..., 2^(K-1)
    std::vector<int> delays;     // ladder: explicit delays, overrides k when non-empty
    std::string tasks = "IARC";  // iarc: enabled tasks, any non-empty subset of "IARC"
    double mu = 6.0;             // iarc: mean segment length
    int l_max = 9;               // iarc: largest segment length
    std::string variant =
        "lookup";       // iarc: lookup (C is an induction lookup) | modifier (C modifies the task)
    double p_c = 0.25;  // iarc modifier: probability that a later control token is C
    int gap_min = 3;    // iarc modifier: smallest distance between control tokens
    int gap_max = 9;    // iarc modifier: largest distance between control tokens
    std::vector<int> levels{2, 3, 4};  // multitask: ladder level of each task
    // text: the corpus, any file of bytes; the default, the King James Bible, is
    // written by `make corpus` (relative paths are relative to the working folder).
    std::string path = "data/kjv.txt";
    // fmnist (the U-ViT's images, not a token task): the folder of the four IDX
    // files; the default is where Debian's dataset-fashion-mnist installs them.
    std::string images = "/usr/share/datasets/fashion-mnist";
};

// One window: T + 1 tokens (inputs are 0..T-1, targets 1..T), and per target
// t = 0..T-1 (the target is tokens[t + 1]) a counted flag and a label index
// into Task::label_names(), or -1 for none. The label is the task the target
// belongs to whether it is counted or not (iarc: its segment's rule; control
// tokens get -1), so per-task accuracy must select counted && label == i.
struct Window {
    std::vector<int32_t> tokens;
    std::vector<uint8_t> counted;
    std::vector<int8_t> label;
};

class Task {
  public:
    virtual ~Task() = default;
    virtual std::string name() const = 0;
    virtual int vocab() const = 0;
    // Names of the per-task labels used for per-task accuracy, e.g. {"I","A","R","C"}.
    virtual std::vector<std::string> label_names() const = 0;
    // Fill one window of length T (T + 1 tokens). All randomness comes from rng,
    // so a window is a pure function of the generator state it is given.
    virtual void sample(Rng& rng, int T, int32_t* tokens, uint8_t* counted,
                        int8_t* label) const = 0;
    // Readable form of a token for `task sample --format text` (e.g. "I" for a control token).
    virtual std::string token_text(int32_t token) const { return std::to_string(token); }

    // Throws Error if windows of length T cannot be drawn (text: a file too short).
    // BatchData::fill and sample_window call it before sampling, so sample() itself
    // never has to fail (it may run on several threads).
    virtual void check_window(int T) const {}
    // The task the evaluation set is drawn from: the task itself for the generated
    // tasks (a separate seed gives fresh windows), the held-out validation part of
    // the file for `text`.
    virtual const Task& eval_task() const { return *this; }
    // Tokens are the bytes of a text: the loss is also reported in bits per byte.
    virtual bool byte_level() const { return false; }
};

// Validates cfg (throws Error naming the key, the value and what is valid) and builds the task.
// Only the options the named task reads are checked.
std::unique_ptr<Task> make_task(const TaskConfig& cfg);

// Names make_task accepts, in registry order: iarc, ladder, multitask, text.
std::vector<std::string> task_names();

// Window number `index` of the stream with seed `seed`: Rng(seed).split(index)
// drives Task::sample, so training window i of a run, or evaluation window i,
// is reproducible on its own (this is what makes resume exact).
Window sample_window(const Task& task, uint64_t seed, uint64_t index, int T);

}  // namespace attnlab
