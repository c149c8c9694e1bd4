// Diffusion runs of the U-ViT on Fashion-MNIST: configuration, training with
// resume, and the evaluation by generated samples (FID in the features of
// attnlab's own classifier, and that classifier's accuracy on the samples).
// The run folder holds the same files as a token run (config.toml, metrics.csv,
// model.safetensors, optimizer.safetensors, summary.json) plus samples.png.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/uvit.h"
#include "train/config.h"
#include "train/trainer.h"

namespace attnlab {

// model.arch = "uvit" or task.name = "fmnist" (they go together).
bool is_diffusion(const RunConfig& cfg);

// Fills the derived fields (model.vocab = 10 classes, model.image from the data's
// header, model.context = the token count, model.attention) and validates.
void resolve_diffusion(RunConfig& cfg);

struct SampleEval {
    double fid = 0;                      // FID (attnlab Fashion-MNIST features), lower is better
    double sample_accuracy = 0;          // samples the classifier assigns to their class
    std::vector<double> class_accuracy;  // per class
    double classifier_accuracy = 0;      // the classifier's own test accuracy
    int samples = 0;
    double sample_s = 0;  // wall time of generating them
};

struct DiffusionSummary {
    SampleEval eval;
    double eval_loss = 0;  // MSE of the predicted noise on the fixed test batch
    double final_loss = 0;
    long steps = 0;
    double wall_s = 0, images_per_s = 0;
    size_t params = 0;
};

DiffusionSummary diffusion_train_new(RunConfig cfg, const TrainOptions& opt);
DiffusionSummary diffusion_train_resume(const std::string& dir,
                                        const std::vector<std::string>& settings,
                                        const TrainOptions& opt);

struct LoadedDiffusionRun {
    RunConfig cfg;
    std::unique_ptr<UViT> model;
};
// Loads a finished or interrupted run's configuration and parameters.
LoadedDiffusionRun load_diffusion_run(const std::string& dir, int max_batch);

// Generates cfg.diffusion.eval_samples images (class i % 10 for image i) and
// measures them; writes a 10 x 10 grid (row = class) to grid_path if not empty.
SampleEval evaluate_samples(UViT& model, const RunConfig& cfg, const std::string& grid_path,
                            bool quiet);

std::string format_sample_eval(const SampleEval& e);

}  // namespace attnlab
