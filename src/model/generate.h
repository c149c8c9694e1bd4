// Autoregressive generation: an incremental decoder with a key/value cache (cost
// per token linear in the tokens seen), a sliding window for sequences longer
// than the model's context, and sampling with temperature and top-k.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "core/rng.h"
#include "model/model.h"

namespace attnlab {

// Next-token logits of a growing sequence, fed one token at a time.
class Decoder {
  public:
    virtual ~Decoder() = default;
    // Appends `token` at position length() and returns the logits (V) of the token
    // after it; valid until the next call. Throws Error if the token is out of range
    // or length() == capacity().
    virtual const float* step(int32_t token) = 0;
    // Forgets the sequence (length() = 0).
    virtual void reset() = 0;
    virtual int length() const = 0;
    // The longest sequence: the model's context.
    virtual int capacity() const = 0;
};

// transformer and cisformer: a key/value cache per layer, so step n costs
// O(L (C^2 + n C)) instead of a forward pass over all n tokens. Step n's logits
// equal row n of Model::forward on a window of `context` tokens that starts with
// the same n + 1 tokens, up to float rounding. The sigmoid map's bias -ln T uses
// T = context, the window length every training step used: with T = the tokens
// seen so far, the keys cached at earlier steps would have been computed with
// another bias (every layer after the first depends on it), and the cache would
// no longer be exact.
// lstm and mlp: Model::forward reruns on the tokens so far (baselines only).
// The model must outlive the decoder and keep its parameters.
std::unique_ptr<Decoder> make_decoder(Model& model);

// A decoder for sequences of any length. When the context is full, it restarts
// from the last context/2 tokens (re-prefilled through the cache) and continues:
// the model always sees a window starting at position 0, as in training, and a
// prefill of context/2 tokens every context/2 tokens keeps the amortised cost per
// token linear in the context.
class SlidingDecoder {
  public:
    explicit SlidingDecoder(Model& model);
    // Appends `token` and returns the logits of the next token.
    const float* feed(int32_t token);
    // The tokens the last logits are conditioned on, oldest first (at most context).
    const std::vector<int32_t>& window() const { return window_; }
    int vocab() const { return vocab_; }

  private:
    std::unique_ptr<Decoder> dec_;
    std::vector<int32_t> window_;
    int vocab_;
};

struct SampleOptions {
    float temperature = 1.0f;  // logits are divided by it; 0 = greedy (argmax)
    int top_k = 0;             // sample among the k most likely tokens (0 = all)
};

// Draws a token from softmax(logits / temperature) over the top_k largest logits
// (ties: the lower token first). Greedy (temperature 0 or top_k 1) uses no randomness.
int32_t sample_token(const float* logits, int V, const SampleOptions& opt, Rng& rng);

// Feeds the prompt (at least one token), then draws `tokens` tokens, each fed back;
// on_token (if set) sees each one as it is drawn. Rng(seed) drives the sampling.
std::vector<int32_t> generate(Model& model, std::span<const int32_t> prompt, int tokens,
                              const SampleOptions& opt, uint64_t seed,
                              const std::function<void(int32_t)>& on_token = {});

}  // namespace attnlab
