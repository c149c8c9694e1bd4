// The golden cases the PyTorch reference recomputes (tests/python): whole models
// (`attnlab golden`) and the attention kernel alone.
#pragma once
#include <string>
#include <vector>

#include "kernels/attention_map.h"

namespace attnlab {

// For each map, causal and bidirectional, with and without ALiBi: the attention
// kernel's inputs (qkv, dL/dout) and results (out, weights, dL/dqkv) in one
// safetensors file, tensors named <map>.<causal|bidirectional>.<plain|alibi>.<tensor>.
void write_attention_golden(const std::string& path, const std::vector<AttnMap>& maps);

}  // namespace attnlab
