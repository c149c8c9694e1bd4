// The model configuration: one struct with a comment on every default, the
// per-layer attention maps resolved, and a JSON form stored in checkpoints.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/embedding.h"
#include "kernels/norm.h"

namespace attnlab {

enum class Arch { transformer, cisformer, lstm, mlp, uvit };
enum class NormPosition { pre, post };

struct ModelConfig {
    Arch arch = Arch::transformer;
    int vocab = 20;    // set from the task
    int context = 64;  // largest window length T the model is built for
    int dim = 64;      // C, the residual width (LSTM: hidden size; MLP: embedding size)
    int layers = 2;    // L
    int heads = 4;     // H; head size hs = C / H
    int ffn_mult = 4;  // FFN hidden width F = ffn_mult * C
    Activation ffn_act = Activation::gelu;           // gelu (tanh form) | relu | swiglu
    NormKind norm = NormKind::layernorm;             // layernorm | rmsnorm
    NormPosition norm_position = NormPosition::pre;  // pre | post
    PosEncoding pos = PosEncoding::learned;          // learned | sinusoidal | rope | alibi | none
    std::vector<AttnMap> attention;                  // one map per layer (resolved)
    std::vector<std::string> cis_linears{"qkv",
                                         "proj"};  // cisformer: position-specific linear maps
    int cis_rank =
        0;  // cisformer: 0 = a full W(t) per position; r > 0 = W(t) = W + U(t) V(t), rank r
    int window = 0;  // mlp: tokens seen (0 = the whole context)
    int hidden = 0;  // mlp: hidden width (0 = 4 * dim)
    // uvit (a diffusion model over images; vocab = the number of classes, context =
    // the token count 2 + (image / patch)^2, both set from the data): layers is the
    // block count, odd: (layers - 1) / 2 in-blocks, a mid-block, as many out-blocks.
    int patch = 4;   // uvit: patch side in pixels (2 or 4)
    int image = 28;  // uvit: image side in pixels (grey images)
};

// uvit: tokens of the model (time, class, patches).
inline int uvit_tokens(const ModelConfig& c) {
    return 2 + (c.image / c.patch) * (c.image / c.patch);
}

// Names <-> enums; from_name functions throw Error naming `key`, the value and the choices.
std::string arch_name(Arch a);
std::string activation_name(Activation a);
std::string norm_name(NormKind n);
std::string norm_position_name(NormPosition p);
std::string pos_name(PosEncoding p);
Arch arch_from_name(const std::string& key, const std::string& v);
Activation activation_from_name(const std::string& key, const std::string& v);
NormKind norm_from_name(const std::string& key, const std::string& v);
NormPosition norm_position_from_name(const std::string& key, const std::string& v);
PosEncoding pos_from_name(const std::string& key, const std::string& v);

// "softmax" (all layers), "softmax,cog,softmax" (one per layer) or the preset
// "cogformer" (softmax in the first and last layer, cog between; needs >= 3 layers).
std::vector<AttnMap> resolve_attention(const std::string& key, const std::string& spec, int layers);
std::string attention_spec(const std::vector<AttnMap>& maps);  // "softmax,cog,softmax"

// One model option, described once: its key under [model], its key and place in
// the checkpoint's model JSON, its valid values and its meaning; the default is
// ModelConfig{}'s. The table generates the [model] keys of the run configuration
// (reading, checking, `attnlab config --list`), validate()'s range checks, the
// checkpoint metadata (to_json, model_config_from_json) and the option table of
// docs/models.md (`attnlab config --markdown`).
struct ModelOption {
    std::string key;   // model.<key> in TOML; "" for values derived from the task or train.*
    std::string json;  // the key in the checkpoint JSON
    int json_at = 0;   // its place there (attnlab-1 files list the keys in this order)
    std::string doc;   // meaning and valid values
    int ModelConfig::*field = nullptr;  // integer options: the field and its range
    long lo = 0, hi = 0;
    // Parses and checks a value (TOML literal or JSON text); throws Error naming model.<key>.
    std::function<void(ModelConfig&, const std::string&)> set;
    // The value as a literal that is both TOML and JSON: 4, "gelu", ["qkv", "proj"].
    std::function<std::string(const ModelConfig&)> get;
    // Whether the checkpoint JSON stores it (null: always); absent means the default.
    std::function<bool(const ModelConfig&)> stored;
    bool required = false;  // a checkpoint JSON without it is refused
};
const std::vector<ModelOption>& model_options();

// Throws Error naming the offending key if the combination makes no sense.
void validate(const ModelConfig& cfg);

std::string to_json(const ModelConfig& cfg);
ModelConfig model_config_from_json(const std::string& text);

}  // namespace attnlab
