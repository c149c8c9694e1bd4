// Factories of the architectures behind make_model (one file each).
#pragma once
#include <memory>

#include "model/model.h"

namespace attnlab {

std::unique_ptr<Model> make_transformer(const ModelConfig& cfg, int max_batch);  // + cisformer
std::unique_ptr<Model> make_lstm(const ModelConfig& cfg, int max_batch);
std::unique_ptr<Model> make_mlp(const ModelConfig& cfg, int max_batch);

}  // namespace attnlab
