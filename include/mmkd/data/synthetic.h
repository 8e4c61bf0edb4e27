// The built-in synthetic MOSEI-like generator: options, presets and generation (SPEC §3).
//
// The model of the data (equations, defaults, what the property tests show) is documented in
// docs/synthetic-data.md. Each option's initialiser below is its default, which is the `small`
// preset; its doc comment says what it controls.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mmkd/data/mosei_data.h"

namespace mmkd::data {

/// Every parameter of the generator. A default-constructed SynthOptions is the `small` preset.
/// Lengths are in time steps, widths and fractions are shares of a sample's true (unpadded)
/// duration, amplitudes are in feature units per unit of label (with noise_std = 1, as in every
/// preset, they are per-step signal-to-noise ratios along the label direction).
struct SynthOptions {
  std::string preset = "small";  ///< name reported in MoseiData::source ("synthetic:<preset>")
  uint64_t seed = 0;             ///< fixes every value; splits draw from separate streams

  int64_t n_train = 2000;  ///< training samples
  int64_t n_valid = 400;   ///< validation samples
  int64_t n_test = 600;    ///< test samples

  int64_t len_video = 48;  ///< video steps T_V (MOSEI: 500)
  int64_t len_audio = 48;  ///< audio steps T_A (MOSEI: 500)
  int64_t len_text = 20;   ///< text steps T_L (MOSEI: 50)

  int64_t dim_video = 35;  ///< video features (MOSEI Facet: 35)
  int64_t dim_audio = 74;  ///< audio features (MOSEI COVAREP: 74)
  int64_t dim_text = 300;  ///< text features (MOSEI GloVe: 300)

  /// Probability of each sentiment class -3..+3 (7 values, normalised on use); MOSEI-like skew.
  std::vector<double> label_probs = {0.02, 0.07, 0.14, 0.26, 0.33, 0.15, 0.03};
  double label_exact_prob = 0.5;  ///< share of labels exactly on their class value (rest ±1/3)

  int64_t events_min = 2;         ///< fewest real (label-carrying) events per sample
  int64_t events_max = 3;         ///< most real events per sample
  int64_t distractors_min = 3;    ///< fewest video distractor events per sample
  int64_t distractors_max = 5;    ///< most video distractor events per sample
  double event_width_min = 0.08;  ///< narrowest event, share of the true duration
  double event_width_max = 0.14;  ///< widest event, share of the true duration
  double intensity_min = 0.8;     ///< per-event intensity s ~ U[intensity_min, intensity_max]
  double intensity_max = 1.2;     ///< (shared by the modalities of one event)

  double noise_std = 1.0;  ///< std of the i.i.d. Gaussian background of every real step
  double snr_text = 3.0;   ///< text amplitude of the said label per event step
  double snr_audio = 0.8;  ///< audio amplitude of the said label per event step
  double snr_video = 0.5;  ///< video amplitude of the full label per event step

  double video_only_share = 0.25;  ///< share of samples whose label differs from the said one
  double video_only_shift = 1.0;   ///< |label - said label| for those samples (video-only part)
  double snr_video_only = 1.5;     ///< video amplitude of the video-only part per event step

  int64_t envelope_channels = 4;   ///< channels 0..k-1 of every modality carry the envelope
  double envelope_strength = 1.5;  ///< envelope rise at real events (same sign everywhere)
  double envelope_jitter = 0.25;   ///< per-event activity r ~ U[1-jitter, 1+jitter]

  double pad_share = 0.7;          ///< share of samples shorter than the full length
  double min_true_fraction = 0.4;  ///< their true duration ~ U[min_true_fraction, 1]
};

/// Sizes and shapes per preset: "tiny" (unit tests), "small" (CPU demo), "medium"
/// (4x small's training rows: the study at informative teacher maps), "mosei" (MOSEI's
/// sizes and shapes). An unknown name raises mmkd::Error listing the valid ones.
SynthOptions synth_preset(const std::string& name);

/// The preset names, in order of size.
std::vector<std::string> synth_preset_names();

/// Sets one option from text (CLI `--set key=value`). Lists take comma-separated values.
/// The key `preset` resets every option to that preset's values (so give it first).
/// Unknown keys and malformed values raise mmkd::Error (suggesting the closest key).
void apply_synth_override(SynthOptions& options, const std::string& key, const std::string& value);

/// Reads options from a YAML map at `path` (e.g. "data.synthetic"); unknown keys and wrong types
/// are refused. A `preset` key resets to that preset first, then the other keys apply.
void apply_synth_yaml(SynthOptions& options, const YAML::Node& node, const std::string& path);

/// Every option in declaration order: name -> "value — doc" (for --list-options and inspect).
std::vector<std::pair<std::string, std::string>> describe_synth_options(
    const SynthOptions& options);

/// Throws mmkd::Error naming the first option out of range (called by generate_synthetic).
void validate_synth_options(const SynthOptions& options);

/// Ground truth the features do not show directly, per split (for tests and diagnostics).
struct SynthSplitTruth {
  torch::Tensor distractors;   ///< bool [N, T_V]: video steps of distractor events
  torch::Tensor said;          ///< float32 [N]: the label carried by text and audio
  torch::Tensor video_only;    ///< float32 [N]: label - said, carried only by video
  torch::Tensor true_lengths;  ///< int64 [N, 3]: unpadded steps per modality (modality_index)
};

/// Ground truth of every split ("train", "valid", "test").
struct SynthTruth {
  std::map<std::string, SynthSplitTruth> splits;
};

/// Generates the three splits: features float32 [N, T_m, F_m] front-padded with zeros, labels in
/// steps of 1/3 in [-3, 3], ids "synth_<split>_<i>", events[m] bool [N, T_m]; source
/// "synthetic:<preset>", layout "mult". Same options (seed included) -> same bytes, whatever the
/// thread count. Sample i of a split depends only on (seed, split, i), not on the split sizes.
/// When `truth` is given it receives the hidden ground truth.
MoseiData generate_synthetic(const SynthOptions& options, SynthTruth* truth = nullptr);

}  // namespace mmkd::data
