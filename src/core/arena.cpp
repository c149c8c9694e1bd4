// Parameter table and aligned buffers.
#include "core/arena.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace attnlab {

size_t ParamTable::add(const std::string& name, std::vector<int64_t> shape, Init init) {
    ParamInfo p;
    p.name = name;
    p.size = 1;
    for (int64_t d : shape) p.size *= size_t(d);
    // Decay on weight matrices (embeddings included), never on biases: the
    // cisformer's per-position biases are 2-D but still biases.
    p.decay = shape.size() >= 2 && !name.ends_with(".bias");
    p.shape = std::move(shape);
    p.init = init;
    p.offset = total_;
    total_ += (p.size + 15) / 16 * 16;
    entries_.push_back(std::move(p));
    return entries_.back().offset;
}

const ParamInfo* ParamTable::find(const std::string& name) const {
    for (const auto& p : entries_)
        if (p.name == name) return &p;
    return nullptr;
}

const ParamInfo& ParamTable::at(const std::string& name) const {
    const ParamInfo* p = find(name);
    if (!p) throw Error("no parameter named '" + name + "'");
    return *p;
}

size_t ParamTable::count() const {
    size_t n = 0;
    for (const auto& p : entries_) n += p.size;
    return n;
}

Buffer::~Buffer() {
    std::free(data_);
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
    std::free(data_);
    data_ = o.data_, size_ = o.size_;
    o.data_ = nullptr, o.size_ = 0;
    return *this;
}

void Buffer::resize(size_t n) {
    std::free(data_);
    size_ = n;
    const size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    data_ = static_cast<float*>(std::aligned_alloc(64, bytes > 0 ? bytes : 64));
    if (!data_) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
    zero();
}

void Buffer::zero() {
    if (size_) std::memset(data_, 0, size_ * sizeof(float));
}

}  // namespace attnlab
