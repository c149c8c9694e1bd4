// The parameter arena: one table {name, shape, offset} built from the model
// configuration drives init, the optimizer, clipping, counting and checkpoints.
// Parameters, gradients and both AdamW moments are four buffers of one layout.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace attnlab {

// N(0,0.02), N(0,0.02/sqrt(2L)), 0, 1; forget_bias: an LSTM gate bias [4C] in
// gate order i, f, g, o, 1 on the forget block (entries C..2C-1) and 0 elsewhere.
enum class Init { normal, residual, zeros, ones, forget_bias };

struct ParamInfo {
    std::string name;
    std::vector<int64_t> shape;
    size_t offset = 0;  // in floats from the start of the arena
    size_t size = 0;    // number of floats
    Init init = Init::normal;
    bool decay = false;  // decoupled weight decay: weight matrices only (ndim >= 2, not a bias)
};

class ParamTable {
  public:
    // Adds a tensor and returns its offset; offsets are 16-float aligned so every
    // tensor starts on a 64-byte boundary.
    size_t add(const std::string& name, std::vector<int64_t> shape, Init init);
    const std::vector<ParamInfo>& entries() const { return entries_; }
    const ParamInfo& at(const std::string& name) const;
    const ParamInfo* find(const std::string& name) const;
    size_t total() const { return total_; }  // arena length in floats (with padding)
    size_t count() const;                    // number of parameters (without padding)

  private:
    std::vector<ParamInfo> entries_;
    size_t total_ = 0;
};

// A float buffer aligned to 64 bytes, zero-initialised. Allocated once.
class Buffer {
  public:
    Buffer() = default;
    explicit Buffer(size_t n) { resize(n); }
    ~Buffer();
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    Buffer(Buffer&& o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr, o.size_ = 0; }
    Buffer& operator=(Buffer&& o) noexcept;
    void resize(size_t n);
    void zero();
    float* data() { return data_; }
    const float* data() const { return data_; }
    size_t size() const { return size_; }
    float& operator[](size_t i) { return data_[i]; }
    float operator[](size_t i) const { return data_[i]; }

  private:
    float* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace attnlab
