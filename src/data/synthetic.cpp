// Generation of the synthetic MOSEI-like data (model: docs/synthetic-data.md).
//
// Samples are generated in fixed-size chunks, each from its own CPU generator seeded from
// (seed, split, chunk): the output is the same whatever the split sizes or the thread count, and
// memory stays at the output plus one chunk. Every step is a whole-tensor op; the only C++ loops
// run over chunks and over the few event slots of a sample.
#include "mmkd/data/synthetic.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>

#include "mmkd/core/error.h"

namespace mmkd::data {
namespace {

/// Samples per chunk. Part of the output's definition (sample i comes from chunk i / kChunk),
/// so changing it changes the data of a seed.
constexpr int64_t kChunk = 256;

/// Added to channel 0 of a real step whose features came out exactly zero (possible only with
/// noise_std = 0), so that "all-zero feature vector" always means padding.
constexpr float kNonZeroFloor = 1e-3f;

/// SplitMix64: decorrelates the seeds of the streams derived from one user seed.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t stream_seed(uint64_t seed, uint64_t a, uint64_t b) {
  return mix(mix(mix(seed) ^ (a + 1)) ^ (b + 0x51ed27));
}

constexpr uint64_t kWorldStream = 0;  // split streams are 1 + split index

at::Generator make_generator(uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

const auto kFloatOptions = torch::TensorOptions().dtype(torch::kFloat32);

/// The fixed directions of the data model, shared by all splits of one seed.
struct World {
  std::array<torch::Tensor, 3> label_dir;  ///< unit [F_m], zero on the envelope channels
  torch::Tensor video_only_dir;            ///< unit [F_V], orthogonal to label_dir[V]
  std::array<torch::Tensor, 3> envelope;   ///< [F_m]: 1 on channels < envelope_channels
};

torch::Tensor unit_direction(int64_t dim, int64_t skip, at::Generator& gen,
                             const torch::Tensor& orthogonal_to = {}) {
  auto d = torch::randn({dim}, gen, kFloatOptions);
  d.narrow(0, 0, skip).zero_();
  if (orthogonal_to.defined()) d -= (d * orthogonal_to).sum() * orthogonal_to;
  return d / d.norm();
}

World make_world(const SynthOptions& o) {
  auto gen = make_generator(stream_seed(o.seed, kWorldStream, 0));
  const std::array<int64_t, 3> dims = {o.dim_video, o.dim_audio, o.dim_text};
  World w;
  for (Modality m : kModalities) {
    const size_t i = modality_index(m);
    w.label_dir[i] = unit_direction(dims[i], o.envelope_channels, gen);
    w.envelope[i] = torch::zeros({dims[i]}, kFloatOptions);
    w.envelope[i].narrow(0, 0, o.envelope_channels).fill_(1.0f);
  }
  w.video_only_dir = unit_direction(o.dim_video, o.envelope_channels, gen,
                                    w.label_dir[modality_index(Modality::kVideo)]);
  return w;
}

/// Labels in steps of 1/3: a class from label_probs, then an offset of -1/3, 0 or +1/3 that
/// keeps the class under round-half-to-even (only inward at +-3).
torch::Tensor sample_labels(const SynthOptions& o, at::IntArrayRef shape, at::Generator& gen) {
  double total = 0;
  for (double p : o.label_probs) total += p;
  const auto u = torch::rand(shape, gen, kFloatOptions);
  auto cls = torch::zeros(shape, kFloatOptions);
  double cumulative = 0;
  for (size_t k = 0; k + 1 < o.label_probs.size(); ++k) {
    cumulative += o.label_probs[k] / total;
    cls += (u >= cumulative).to(torch::kFloat32);
  }
  const auto v = torch::rand(shape, gen, kFloatOptions);
  const double p0 = o.label_exact_prob;
  auto offset =
      torch::where(v < p0, torch::zeros_like(v),
                   torch::where(v < p0 + (1 - p0) / 2, -torch::ones_like(v), torch::ones_like(v)));
  offset = torch::where(cls == 0, offset.abs(), offset);
  offset = torch::where(cls == 6, -offset.abs(), offset);
  return ((cls - 3) * 3 + offset) / 3.0f;
}

torch::Tensor uniform(at::IntArrayRef shape, double lo, double hi, at::Generator& gen) {
  return torch::rand(shape, gen, kFloatOptions) * static_cast<float>(hi - lo) +
         static_cast<float>(lo);
}

/// Integer counts uniform in [lo, hi], as float.
torch::Tensor uniform_count(int64_t n, int64_t lo, int64_t hi, at::Generator& gen) {
  const auto u = torch::rand({n}, gen, kFloatOptions);
  return torch::clamp_max(torch::floor(u * static_cast<float>(hi - lo + 1)) + lo, hi);
}

struct Chunk {
  torch::Tensor labels, said, video_only;  // [B]
  std::array<torch::Tensor, 3> features;   // [B,T,F]
  std::array<torch::Tensor, 3> events;     // bool [B,T]
  torch::Tensor distractors;               // bool [B,T_V]
  torch::Tensor true_lengths;              // int64 [B,3]
};

Chunk generate_chunk(const SynthOptions& o, const World& world, at::Generator& gen) {
  const int64_t b = kChunk;
  Chunk out;

  // Per-sample draws (the order of the draws is part of the data's definition).
  out.labels = sample_labels(o, {b}, gen);
  const auto shifted = torch::rand({b}, gen, kFloatOptions) < o.video_only_share;
  const auto sign = torch::where(torch::rand({b}, gen, kFloatOptions) < 0.5, -1.0f, 1.0f);
  out.video_only = shifted.to(torch::kFloat32) * sign * static_cast<float>(o.video_only_shift);
  // Keep the said label a valid sentiment: shift inward where outward would leave [-3, 3].
  out.video_only =
      torch::where((out.labels - out.video_only).abs() > 3, -out.video_only, out.video_only);
  out.said = out.labels - out.video_only;

  const auto padded = torch::rand({b}, gen, kFloatOptions) < o.pad_share;
  const auto fraction = uniform({b}, o.min_true_fraction, 1.0, gen);
  const auto true_fraction = torch::where(padded, fraction, torch::ones_like(fraction));

  // Event slots: the true duration is cut into K equal slots, one event per slot at most, so
  // events never overlap when widths stay below 1/K. Slots [0, E_max) are real events, the rest
  // video distractors; slot j is active when j < the sample's count.
  const int64_t n_real = o.events_max;
  const int64_t n_slots = o.events_max + o.distractors_max;
  const auto n_events = uniform_count(b, o.events_min, o.events_max, gen);
  const auto n_distractors = uniform_count(b, o.distractors_min, o.distractors_max, gen);
  const auto slot = std::get<1>(torch::sort(torch::rand({b, n_slots}, gen, kFloatOptions),
                                            /*stable=*/true, /*dim=*/1, /*descending=*/false))
                        .to(torch::kFloat32);
  const auto width = uniform({b, n_slots}, o.event_width_min, o.event_width_max, gen);
  const float slot_width = 1.0f / static_cast<float>(n_slots);
  const auto start = slot * slot_width + torch::rand({b, n_slots}, gen, kFloatOptions) *
                                             torch::clamp_min(slot_width - width, 0);
  const auto end = torch::clamp_max(start + width, 1.0f);
  const auto intensity = uniform({b, n_slots}, o.intensity_min, o.intensity_max, gen);
  const auto activity = uniform({b, n_slots}, 1 - o.envelope_jitter, 1 + o.envelope_jitter, gen);
  const auto slot_index = torch::arange(n_slots, kFloatOptions).unsqueeze(0);
  const auto active = torch::where(slot_index < n_real, slot_index < n_events.unsqueeze(1),
                                   (slot_index - n_real) < n_distractors.unsqueeze(1));
  // Distractors show random expressions: values uniform in [-3, 3] (a random face says
  // nothing about the label), video-only parts drawn like the samples' own.
  const auto distractor_value = uniform({b, o.distractors_max}, -3.0, 3.0, gen);
  const auto distractor_shift =
      (torch::rand({b, o.distractors_max}, gen, kFloatOptions) < o.video_only_share)
          .to(torch::kFloat32) *
      torch::where(torch::rand({b, o.distractors_max}, gen, kFloatOptions) < 0.5, -1.0f, 1.0f) *
      static_cast<float>(o.video_only_shift);

  const std::array<int64_t, 3> lengths = {o.len_video, o.len_audio, o.len_text};
  const std::array<int64_t, 3> dims = {o.dim_video, o.dim_audio, o.dim_text};
  const std::array<double, 3> snr = {o.snr_video, o.snr_audio, o.snr_text};
  out.true_lengths = torch::empty({b, 3}, torch::kInt64);

  for (Modality m : kModalities) {
    const size_t i = modality_index(m);
    const bool video = m == Modality::kVideo;
    const int64_t t_max = lengths[i];
    const auto true_len =
        torch::clamp(torch::round(true_fraction * static_cast<float>(t_max)), 1, t_max);
    out.true_lengths.select(1, static_cast<int64_t>(i)).copy_(true_len.to(torch::kInt64));
    const auto pad = (static_cast<float>(t_max) - true_len).unsqueeze(1);  // [B,1]
    const auto len = true_len.unsqueeze(1);
    const auto step = torch::arange(t_max, kFloatOptions).unsqueeze(0);  // [1,T]
    // Event j covers the same share of every modality's true duration, at least one step.
    const auto first = pad + torch::floor(start * len);                         // [B,K]
    const auto last = torch::maximum(first + 1, pad + torch::ceil(end * len));  // [B,K)

    const auto& value = video ? out.labels : out.said;
    auto label_coef = torch::zeros({b, t_max}, kFloatOptions);
    auto video_only_coef = torch::zeros({b, t_max}, kFloatOptions);
    auto envelope_coef = torch::zeros({b, t_max}, kFloatOptions);
    auto real_events = torch::zeros({b, t_max}, torch::kBool);
    auto distractors = torch::zeros({b, t_max}, torch::kBool);
    const int64_t slots_here = video ? n_slots : n_real;  // distractors are video only
    for (int64_t j = 0; j < slots_here; ++j) {
      const auto in_event = active.select(1, j).unsqueeze(1) &
                            (step >= first.select(1, j).unsqueeze(1)) &
                            (step < last.select(1, j).unsqueeze(1));
      const auto on = in_event.to(torch::kFloat32);
      const auto s = intensity.select(1, j).unsqueeze(1);
      if (j < n_real) {
        label_coef += on * (s * value.unsqueeze(1));
        if (video) video_only_coef += on * (s * out.video_only.unsqueeze(1));
        envelope_coef += on * activity.select(1, j).unsqueeze(1);
        real_events |= in_event;
      } else {
        const int64_t d = j - n_real;
        label_coef += on * (s * distractor_value.select(1, d).unsqueeze(1));
        video_only_coef += on * (s * distractor_shift.select(1, d).unsqueeze(1));
        distractors |= in_event;
      }
    }

    auto x = torch::randn({b, t_max, dims[i]}, gen, kFloatOptions);
    x.mul_(static_cast<float>(o.noise_std));
    const auto view = [&](const torch::Tensor& dir) { return dir.view({1, 1, dims[i]}); };
    x.addcmul_(label_coef.unsqueeze(2), view(world.label_dir[i]), snr[i]);
    if (video)
      x.addcmul_(video_only_coef.unsqueeze(2), view(world.video_only_dir), o.snr_video_only);
    x.addcmul_(envelope_coef.unsqueeze(2), view(world.envelope[i]), o.envelope_strength);

    // MOSEI-like front padding: padded steps are exactly zero, real steps never are.
    const auto real_step = step >= pad;  // [B,T]
    x.mul_(real_step.unsqueeze(2).to(torch::kFloat32));
    const auto all_zero = (x == 0).all(2) & real_step;
    x.select(2, 0).add_(all_zero.to(torch::kFloat32) * kNonZeroFloor);

    out.features[i] = x;
    out.events[i] = real_events & real_step;
    if (video) out.distractors = distractors & real_step & ~real_events;
  }
  return out;
}

Split generate_split(const SynthOptions& o, const World& world, size_t split_index,
                     const std::string& split_name, int64_t n, SynthSplitTruth* truth) {
  const std::array<int64_t, 3> lengths = {o.len_video, o.len_audio, o.len_text};
  const std::array<int64_t, 3> dims = {o.dim_video, o.dim_audio, o.dim_text};
  Split split;
  for (size_t i = 0; i < 3; ++i) {
    split.features[i] = torch::empty({n, lengths[i], dims[i]}, kFloatOptions);
    split.events[i] = torch::empty({n, lengths[i]}, torch::kBool);
  }
  split.labels = torch::empty({n}, kFloatOptions);
  SynthSplitTruth t;
  t.distractors = torch::empty({n, o.len_video}, torch::kBool);
  t.said = torch::empty({n}, kFloatOptions);
  t.video_only = torch::empty({n}, kFloatOptions);
  t.true_lengths = torch::empty({n, 3}, torch::kInt64);

  for (int64_t c0 = 0, chunk = 0; c0 < n; c0 += kChunk, ++chunk) {
    auto gen = make_generator(stream_seed(o.seed, 1 + split_index, static_cast<uint64_t>(chunk)));
    const Chunk part = generate_chunk(o, world, gen);
    const int64_t len = std::min(kChunk, n - c0);
    const auto put = [&](torch::Tensor& dst, const torch::Tensor& src) {
      dst.narrow(0, c0, len).copy_(src.narrow(0, 0, len));
    };
    for (size_t i = 0; i < 3; ++i) {
      put(split.features[i], part.features[i]);
      put(split.events[i], part.events[i]);
    }
    put(split.labels, part.labels);
    if (truth) {
      put(t.distractors, part.distractors);
      put(t.said, part.said);
      put(t.video_only, part.video_only);
      put(t.true_lengths, part.true_lengths);
    }
  }
  split.ids.reserve(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k)
    split.ids.push_back("synth_" + split_name + "_" + std::to_string(k));
  if (truth) *truth = std::move(t);
  return split;
}

}  // namespace

MoseiData generate_synthetic(const SynthOptions& options, SynthTruth* truth) {
  validate_synth_options(options);
  const World world = make_world(options);
  const std::array<int64_t, 3> sizes = {options.n_train, options.n_valid, options.n_test};
  MoseiData data;
  data.source = "synthetic:" + options.preset;
  data.layout = "mult";
  if (truth) truth->splits.clear();
  for (size_t s = 0; s < kSplitNames.size(); ++s) {
    const std::string name = kSplitNames[s];
    SynthSplitTruth split_truth;
    data.splits[name] =
        generate_split(options, world, s, name, sizes[s], truth ? &split_truth : nullptr);
    if (truth) truth->splits[name] = std::move(split_truth);
    for (Modality m : kModalities) data.source_dtypes[name + "/" + modality_key(m)] = "float32";
    data.source_dtypes[name + "/labels"] = "float32";
  }
  return data;
}

}  // namespace mmkd::data
