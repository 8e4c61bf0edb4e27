// Tests of the synthetic generator: options, shapes, determinism, and the structural properties
// of SPEC §3 shown with simple linear probes on the `small` preset.
#include "mmkd/data/synthetic.h"

#include <gtest/gtest.h>

#include <iomanip>
#include <iostream>

#include "../support/errors.h"
#include "mmkd/core/error.h"

namespace mmkd::data {
namespace {

using mmkd::testing::error_of;

constexpr size_t kV = modality_index(Modality::kVideo);
constexpr size_t kA = modality_index(Modality::kAudio);
constexpr size_t kL = modality_index(Modality::kText);

// ---- options ----

TEST(SynthOptions, PresetsHaveDocumentedSizes) {
  const auto tiny = synth_preset("tiny");
  EXPECT_EQ(tiny.n_train, 128);
  EXPECT_EQ(tiny.n_valid, 48);
  EXPECT_EQ(tiny.n_test, 48);
  EXPECT_EQ(tiny.len_video, 16);
  EXPECT_EQ(tiny.len_audio, 16);
  EXPECT_EQ(tiny.len_text, 8);
  const auto small = synth_preset("small");
  EXPECT_EQ(small.n_train, 2000);
  EXPECT_EQ(small.n_valid, 400);
  EXPECT_EQ(small.n_test, 600);
  const auto medium = synth_preset("medium");
  EXPECT_EQ(medium.n_train, 8000);
  EXPECT_EQ(medium.n_valid, 1000);
  EXPECT_EQ(medium.n_test, 2000);
  EXPECT_EQ(medium.len_video, small.len_video);
  EXPECT_EQ(medium.len_audio, small.len_audio);
  EXPECT_EQ(medium.len_text, small.len_text);
  const auto mosei = synth_preset("mosei");
  EXPECT_EQ(mosei.n_train, 16326);
  EXPECT_EQ(mosei.n_valid, 1871);
  EXPECT_EQ(mosei.n_test, 4659);
  EXPECT_EQ(mosei.len_text, 50);
  EXPECT_EQ(mosei.len_audio, 500);
  EXPECT_EQ(mosei.len_video, 500);
  for (const auto& name : synth_preset_names()) {
    const auto o = synth_preset(name);
    EXPECT_EQ(o.preset, name);
    EXPECT_EQ(o.dim_video, 35);
    EXPECT_EQ(o.dim_audio, 74);
    EXPECT_EQ(o.dim_text, 300);
    EXPECT_NO_THROW(validate_synth_options(o));
  }
}

TEST(SynthOptions, UnknownPresetListsValidNames) {
  const auto message = error_of([] { synth_preset("smal"); });
  EXPECT_NE(message.find("unknown synthetic preset 'smal'"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean 'small'"), std::string::npos) << message;
  EXPECT_NE(message.find("tiny, small, medium, mosei"), std::string::npos) << message;
}

TEST(SynthOptions, OverridesParseAndRefuseBadInput) {
  auto o = synth_preset("tiny");
  apply_synth_override(o, "n_train", "7");
  apply_synth_override(o, "snr_video", "0.25");
  apply_synth_override(o, "seed", "42");
  apply_synth_override(o, "label_probs", "1,1,1,1,1,1,1");
  EXPECT_EQ(o.n_train, 7);
  EXPECT_DOUBLE_EQ(o.snr_video, 0.25);
  EXPECT_EQ(o.seed, 42u);
  EXPECT_EQ(o.label_probs.size(), 7u);

  auto message = error_of([&] { apply_synth_override(o, "snr_vidoe", "1"); });
  EXPECT_NE(message.find("unknown synthetic option 'snr_vidoe'"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean 'snr_video'"), std::string::npos) << message;
  message = error_of([&] { apply_synth_override(o, "n_train", "12x"); });
  EXPECT_NE(message.find("'n_train': expected an integer"), std::string::npos) << message;
  message = error_of([&] { apply_synth_override(o, "noise_std", "loud"); });
  EXPECT_NE(message.find("'noise_std': expected a number"), std::string::npos) << message;

  // `preset` resets the other options but keeps the seed.
  apply_synth_override(o, "preset", "mosei");
  EXPECT_EQ(o.n_train, 16326);
  EXPECT_EQ(o.seed, 42u);
}

TEST(SynthOptions, YamlIsStrict) {
  auto o = synth_preset("small");
  apply_synth_yaml(o, YAML::Load("{preset: tiny, n_test: 5, label_probs: [1,2,3,4,5,6,7]}"),
                   "data.synthetic");
  EXPECT_EQ(o.preset, "tiny");
  EXPECT_EQ(o.n_train, 128);
  EXPECT_EQ(o.n_test, 5);
  EXPECT_DOUBLE_EQ(o.label_probs[6], 7.0);
  auto message =
      error_of([&] { apply_synth_yaml(o, YAML::Load("{evnets_max: 3}"), "data.synthetic"); });
  EXPECT_NE(message.find("unknown config key 'data.synthetic.evnets_max'"), std::string::npos)
      << message;
  EXPECT_NE(message.find("did you mean 'data.synthetic.events_max'"), std::string::npos) << message;
  message = error_of([&] { apply_synth_yaml(o, YAML::Load("{snr_text: high}"), "data"); });
  EXPECT_NE(message.find("'data.snr_text': expected a number"), std::string::npos) << message;
  message = error_of([&] { apply_synth_yaml(o, YAML::Load("{seed: -1}"), "data"); });
  EXPECT_NE(message.find("expected a non-negative integer"), std::string::npos) << message;
}

TEST(SynthOptions, DescribeListsEveryOptionWithValue) {
  auto o = synth_preset("small");
  o.snr_video = 0.75;
  const auto rows = describe_synth_options(o);
  EXPECT_GE(rows.size(), 30u);
  bool found = false;
  for (const auto& [name, text] : rows) {
    EXPECT_LE(name.size(), 21u) << name;  // the CLI pads names to 22 columns
    EXPECT_NE(text.find(" \u2014 "), std::string::npos) << name;
    // Every described option can be set back from its own text.
    if (name != "preset") {
      EXPECT_NO_THROW(apply_synth_override(o, name, text.substr(0, text.find(' '))));
    }
    if (name == "snr_video") {
      found = true;
      EXPECT_EQ(text.substr(0, 4), "0.75");
    }
  }
  EXPECT_TRUE(found);
}

TEST(SynthOptions, ValidationNamesTheOption) {
  auto o = synth_preset("tiny");
  o.events_min = 5;
  EXPECT_NE(error_of([&] { generate_synthetic(o); }).find("'events_min'"), std::string::npos);
  o = synth_preset("tiny");
  o.label_probs = {1, 2};
  EXPECT_NE(error_of([&] { generate_synthetic(o); }).find("'label_probs' needs 7"),
            std::string::npos);
  o = synth_preset("tiny");
  o.dim_video = 4;
  EXPECT_NE(error_of([&] { generate_synthetic(o); }).find("'dim_video'"), std::string::npos);
}

// ---- shapes, layout, determinism ----

void expect_shapes(const MoseiData& data, const SynthOptions& o) {
  const std::array<int64_t, 3> sizes = {o.n_train, o.n_valid, o.n_test};
  const std::array<int64_t, 3> lengths = {o.len_video, o.len_audio, o.len_text};
  const std::array<int64_t, 3> dims = {o.dim_video, o.dim_audio, o.dim_text};
  EXPECT_EQ(data.source, "synthetic:" + o.preset);
  EXPECT_EQ(data.layout, "mult");
  for (size_t s = 0; s < 3; ++s) {
    const Split& split = data.split(kSplitNames[s]);
    ASSERT_EQ(split.size(), sizes[s]);
    ASSERT_EQ(split.ids.size(), static_cast<size_t>(sizes[s]));
    if (sizes[s] > 0) {
      EXPECT_EQ(split.ids[0], std::string("synth_") + kSplitNames[s] + "_0");
    }
    EXPECT_EQ(split.labels.scalar_type(), torch::kFloat32);
    for (size_t m = 0; m < 3; ++m) {
      EXPECT_EQ(split.features[m].sizes(), (std::vector<int64_t>{sizes[s], lengths[m], dims[m]}));
      EXPECT_EQ(split.features[m].scalar_type(), torch::kFloat32);
      EXPECT_EQ(split.events[m].sizes(), (std::vector<int64_t>{sizes[s], lengths[m]}));
      EXPECT_EQ(split.events[m].scalar_type(), torch::kBool);
    }
  }
}

TEST(SyntheticData, ShapesOfEveryPreset) {
  const auto tiny = synth_preset("tiny");
  expect_shapes(generate_synthetic(tiny), tiny);
  // MOSEI's shapes without generating 6 GB: same lengths and dims, a few samples.
  auto mosei = synth_preset("mosei");
  mosei.n_train = 3;
  mosei.n_valid = 2;
  mosei.n_test = 1;
  expect_shapes(generate_synthetic(mosei), mosei);
  auto small = synth_preset("small");
  small.n_train = 300;  // crosses a chunk boundary
  small.n_valid = 0;
  small.n_test = 1;
  expect_shapes(generate_synthetic(small), small);
}

void expect_same(const MoseiData& a, const MoseiData& b) {
  for (const auto* name : kSplitNames) {
    const Split& x = a.split(name);
    const Split& y = b.split(name);
    EXPECT_TRUE(torch::equal(x.labels, y.labels)) << name;
    for (size_t m = 0; m < 3; ++m) {
      EXPECT_TRUE(torch::equal(x.features[m], y.features[m])) << name << " " << m;
      EXPECT_TRUE(torch::equal(x.events[m], y.events[m])) << name << " " << m;
    }
  }
}

TEST(SyntheticData, DeterministicForASeedWhateverTheThreads) {
  const auto o = synth_preset("tiny");
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  const auto one = generate_synthetic(o);
  torch::set_num_threads(std::max(2, threads));
  const auto two = generate_synthetic(o);
  torch::set_num_threads(threads);
  expect_same(one, two);

  auto other = o;
  other.seed = 1;
  const auto different = generate_synthetic(other);
  for (size_t m = 0; m < 3; ++m)
    EXPECT_FALSE(
        torch::equal(one.split("train").features[m], different.split("train").features[m]));
}

TEST(SyntheticData, SplitsAreIndependentStreams) {
  const auto o = synth_preset("tiny");
  const auto base = generate_synthetic(o);
  auto resized = o;
  resized.n_test = 300;
  resized.n_valid = 3;
  resized.n_train = 10;
  const auto changed = generate_synthetic(resized);
  // Changing other splits' sizes leaves a split alone; shrinking a split keeps its prefix.
  EXPECT_TRUE(
      torch::equal(base.split("test").labels, changed.split("test").labels.narrow(0, 0, 48)));
  for (size_t m = 0; m < 3; ++m) {
    EXPECT_TRUE(torch::equal(base.split("train").features[m].narrow(0, 0, 10),
                             changed.split("train").features[m]));
    EXPECT_TRUE(torch::equal(base.split("valid").features[m].narrow(0, 0, 3),
                             changed.split("valid").features[m]));
  }
  // Splits differ from each other.
  EXPECT_FALSE(torch::equal(base.split("valid").labels, base.split("test").labels));
}

// A step is real iff its feature vector is not all zero.
torch::Tensor real_steps(const torch::Tensor& x) { return (x != 0).any(2); }

TEST(SyntheticData, FrontPaddingAndEventsAreConsistent) {
  auto o = synth_preset("tiny");
  SynthTruth truth;
  const auto data = generate_synthetic(o, &truth);
  const Split& train = data.split("train");
  const auto& t = truth.splits.at("train");
  for (size_t m = 0; m < 3; ++m) {
    const auto real = real_steps(train.features[m]);
    // Real steps are a suffix of the sequence whose length is the true length.
    EXPECT_TRUE(torch::equal(real.sum(1), t.true_lengths.select(1, static_cast<int64_t>(m))));
    const auto t_max = real.size(1);
    const auto start = t_max - t.true_lengths.select(1, static_cast<int64_t>(m)).unsqueeze(1);
    EXPECT_TRUE(torch::equal(real, torch::arange(t_max).unsqueeze(0) >= start));
    // Events lie in real steps; every sample has at least one real event step.
    EXPECT_FALSE((train.events[m] & ~real).any().item<bool>());
    EXPECT_TRUE(train.events[m].any(1).all().item<bool>());
  }
  EXPECT_LT(t.true_lengths.select(1, kV).to(torch::kFloat).mean().item<double>(), 16.0);
  EXPECT_FALSE((t.distractors & train.events[kV]).any().item<bool>());
  EXPECT_TRUE(t.distractors.any().item<bool>());

  // With no noise and no signal a real step would be all zero: it must still read as real.
  o.noise_std = 0;
  SynthTruth quiet_truth;
  const auto quiet = generate_synthetic(o, &quiet_truth);
  for (size_t m = 0; m < 3; ++m)
    EXPECT_TRUE(torch::equal(real_steps(quiet.split("train").features[m]).sum(1),
                             quiet_truth.splits.at("train").true_lengths.select(1, m)));
}

TEST(SyntheticData, EventsAreTimeAlignedAcrossModalities) {
  auto o = synth_preset("small");
  o.n_train = 256;
  o.n_valid = o.n_test = 0;
  SynthTruth truth;
  const Split train = generate_synthetic(o, &truth).split("train");
  const auto& lengths = truth.splits.at("train").true_lengths;
  // Centre of the event steps as a share of the true duration, per modality.
  std::array<torch::Tensor, 3> centre;
  for (size_t m = 0; m < 3; ++m) {
    const auto ev = train.events[m].to(torch::kFloat);
    const auto t_max = ev.size(1);
    const auto len = lengths.select(1, m).to(torch::kFloat);
    const auto pos =
        torch::arange(t_max, torch::kFloat).unsqueeze(0) + 0.5 - (t_max - len).unsqueeze(1);
    centre[m] = (ev * pos).sum(1) / ev.sum(1) / len;
  }
  // Text has 20 steps, so alignment holds to about a step of text.
  EXPECT_LT((centre[kV] - centre[kA]).abs().mean().item<double>(), 0.02);
  EXPECT_LT((centre[kV] - centre[kL]).abs().mean().item<double>(), 0.06);
}

// ---- labels ----

TEST(SyntheticData, LabelsAreThirdsSkewedLikeMosei) {
  const auto o = synth_preset("small");
  const auto data = generate_synthetic(o);
  const auto labels = torch::cat(
      {data.split("train").labels, data.split("valid").labels, data.split("test").labels});
  EXPECT_LE(labels.abs().max().item<float>(), 3.0f);
  const auto thirds = labels * 3;
  EXPECT_LT((thirds - thirds.round()).abs().max().item<float>(), 1e-4f);
  // SPEC §3 class rule: clip to [-3,3], round half to even, +3.
  const auto classes = torch::round(torch::clamp(labels, -3, 3)).to(torch::kLong) + 3;
  const auto counts = torch::bincount(classes, {}, 7).to(torch::kDouble) / labels.size(0);
  std::cout << "label class shares -3..+3:";
  for (int k = 0; k < 7; ++k)
    std::cout << " " << std::fixed << std::setprecision(3) << counts[k].item<double>();
  std::cout << "\n";
  const auto order = std::get<1>(counts.sort(0, /*descending=*/true));
  EXPECT_EQ(std::min(order[0].item<int64_t>(), order[1].item<int64_t>()), 3);
  EXPECT_EQ(std::max(order[0].item<int64_t>(), order[1].item<int64_t>()), 4);
  EXPECT_GT(counts[3].item<double>() + counts[4].item<double>(), 0.5);
  EXPECT_LT(counts[0].item<double>(), 0.05);
  EXPECT_LT(counts[6].item<double>(), 0.05);
  EXPECT_GT(counts[4].item<double>(), counts[2].item<double>());  // positive skew
  EXPECT_GT(counts[5].item<double>(), counts[1].item<double>());
}

// ---- probes on the small preset ----

/// Mean of x [N,T,F] over the steps where mask [N,T] is true (0 where none).
torch::Tensor masked_mean(const torch::Tensor& x, const torch::Tensor& mask) {
  const auto w = mask.to(torch::kFloat).unsqueeze(2);
  return (x * w).sum(1) / w.sum(1).clamp_min(1);
}

struct Probe {
  double acc7 = 0;  ///< 7-class accuracy of the rounded prediction
  double mae = 0;
  double corr = 0;
};

/// Ridge regression features -> label: fit on train, pick the ridge on valid (by MAE), report
/// on test. Features are standardised with the training statistics.
Probe ridge_probe(const std::array<torch::Tensor, 3>& x, const std::array<torch::Tensor, 3>& y) {
  const auto mean = x[0].to(torch::kDouble).mean(0);
  const auto std = x[0].to(torch::kDouble).std(0).clamp_min(1e-6);
  std::array<torch::Tensor, 3> z;
  for (int s = 0; s < 3; ++s) {
    const auto standard = (x[s].to(torch::kDouble) - mean) / std;
    z[s] = torch::cat({standard, torch::ones({standard.size(0), 1}, torch::kDouble)}, 1);
  }
  const auto target = y[0].to(torch::kDouble);
  const auto gram = z[0].t().mm(z[0]);
  const auto rhs = z[0].t().mv(target);
  const auto eye = torch::eye(gram.size(0), torch::kDouble);
  torch::Tensor best_w;
  double best_mae = 1e30;
  for (double lambda : {0.1, 1.0, 10.0, 100.0, 1000.0}) {
    const auto w =
        at::linalg_solve(gram + lambda * eye, rhs.unsqueeze(1), /*left=*/true).squeeze(1);
    const double mae = (z[1].mv(w) - y[1].to(torch::kDouble)).abs().mean().item<double>();
    if (mae < best_mae) {
      best_mae = mae;
      best_w = w;
    }
  }
  const auto pred = z[2].mv(best_w);
  const auto truth = y[2].to(torch::kDouble);
  Probe p;
  const auto cls = [](const torch::Tensor& v) { return torch::round(torch::clamp(v, -3, 3)); };
  p.acc7 = (cls(pred) == cls(truth)).to(torch::kDouble).mean().item<double>();
  p.mae = (pred - truth).abs().mean().item<double>();
  const auto pc = pred - pred.mean();
  const auto tc = truth - truth.mean();
  p.corr = ((pc * tc).sum() / (pc.norm() * tc.norm())).item<double>();
  return p;
}

class SmallProbes : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    truth_ = new SynthTruth;
    data_ = new MoseiData(generate_synthetic(synth_preset("small"), truth_));
  }
  static void TearDownTestSuite() {
    delete data_;
    delete truth_;
  }

  using Features = std::function<torch::Tensor(const Split&)>;
  static Probe probe(const std::string& name, const Features& features) {
    std::array<torch::Tensor, 3> x, y;
    for (int s = 0; s < 3; ++s) {
      const Split& split = data_->split(kSplitNames[s]);
      x[s] = features(split);
      y[s] = split.labels;
    }
    const Probe p = ridge_probe(x, y);
    std::cout << std::left << std::setw(34) << name << " acc7 " << std::fixed
              << std::setprecision(3) << p.acc7 << "  MAE " << p.mae << "  r " << p.corr << "\n";
    return p;
  }
  static torch::Tensor all_steps(const Split& s, size_t m) {
    return masked_mean(s.features[m], real_steps(s.features[m]));
  }
  static torch::Tensor event_steps(const Split& s, size_t m) {
    return masked_mean(s.features[m], s.events[m]);
  }

  static MoseiData* data_;
  static SynthTruth* truth_;
};
MoseiData* SmallProbes::data_ = nullptr;
SynthTruth* SmallProbes::truth_ = nullptr;

// (a) Text, averaged over its steps, recovers the label far better than video averaged over all
// frames (where the label is diluted and mixed with distractor expressions).
// (b) Video averaged over the true event frames recovers it nearly as well as text.
TEST_F(SmallProbes, TextBeatsVideoMeanButVideoEventsNearlyMatchText) {
  const auto text = probe("text, mean over steps", [](const Split& s) { return all_steps(s, kL); });
  const auto video_all =
      probe("video, mean over all frames", [](const Split& s) { return all_steps(s, kV); });
  const auto video_events =
      probe("video, mean over event frames", [](const Split& s) { return event_steps(s, kV); });
  EXPECT_GT(text.acc7, video_all.acc7 + 0.15);
  EXPECT_GT(text.corr, video_all.corr + 0.2);
  EXPECT_GT(video_events.acc7, text.acc7 - 0.05);
  EXPECT_GT(video_events.corr, text.corr - 0.03);
}

// (c) Video event frames add information to text and audio: the teacher can gain from video.
TEST_F(SmallProbes, EventFrameVideoImprovesTextAndAudio) {
  const auto ta = probe("text + audio, mean over steps", [](const Split& s) {
    return torch::cat({all_steps(s, kL), all_steps(s, kA)}, 1);
  });
  const auto tav = probe("text + audio + video event frames", [](const Split& s) {
    return torch::cat({all_steps(s, kL), all_steps(s, kA), event_steps(s, kV)}, 1);
  });
  const auto tav_all = probe("text + audio + video all frames", [](const Split& s) {
    return torch::cat({all_steps(s, kL), all_steps(s, kA), all_steps(s, kV)}, 1);
  });
  EXPECT_GT(tav.acc7, ta.acc7 + 0.08);
  EXPECT_LT(tav.mae, ta.mae - 0.1);
  EXPECT_GT(tav.acc7, tav_all.acc7);  // finding the right frames is what pays off
  // Audio carries the said label less clearly than text.
  const auto audio =
      probe("audio, mean over steps", [](const Split& s) { return all_steps(s, kA); });
  const auto text = probe("text, mean over steps", [](const Split& s) { return all_steps(s, kL); });
  EXPECT_LT(audio.corr, text.corr);
}

// (d) The activity envelope (channels < envelope_channels) rises at real events in every
// modality, with the same sign, and not at video distractors.
TEST_F(SmallProbes, EnvelopeMarksRealEventsOnly) {
  const auto o = synth_preset("small");
  const Split& train = data_->split("train");
  const auto& distractors = truth_->splits.at("train").distractors;
  for (size_t m = 0; m < 3; ++m) {
    const auto x = train.features[m];
    const auto envelope = x.narrow(2, 0, o.envelope_channels).mean(2);  // [N,T]
    const auto real = real_steps(x);
    const auto at = [&](const torch::Tensor& mask) {
      return envelope.masked_select(mask).mean().item<double>();
    };
    const double on = at(train.events[m]);
    const double off = at(real & ~train.events[m] & (m == kV ? ~distractors : real));
    std::cout << modality_letter(kModalities[m]) << " envelope: events " << std::fixed
              << std::setprecision(3) << on << ", other steps " << off;
    EXPECT_GT(on, off + 0.5 * o.envelope_strength);
    EXPECT_NEAR(off, 0.0, 0.05);
    if (m == kV) {
      const double dis = at(distractors);
      std::cout << ", distractors " << dis;
      EXPECT_NEAR(dis, 0.0, 0.05);
    }
    std::cout << "\n";
  }
}

}  // namespace
}  // namespace mmkd::data
