// Placeholder factories for the LSTM and MLP until their issue lands: they
// refuse clearly instead of building something half-made.
#include "core/error.h"
#include "model/architectures.h"

namespace attnlab {

std::unique_ptr<Model> make_lstm(const ModelConfig&, int) {
    throw Error("model.arch = 'lstm' is not implemented yet; choose transformer or cisformer");
}
std::unique_ptr<Model> make_mlp(const ModelConfig&, int) {
    throw Error("model.arch = 'mlp' is not implemented yet; choose transformer or cisformer");
}

}  // namespace attnlab
