// The KD-term registry and the field's baselines (logit KD, FitNets, MiniLM, TinyBERT): each
// loss against values computed here by explicit loops, the list form of distill.terms and its
// errors, and a run with two terms end to end.
#include "mmkd/distill/kd_term.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "../support/cli.h"
#include "../support/numbers.h"
#include "distill_test_util.h"
#include "mmkd/core/error.h"
#include "mmkd/distill/distill_config.h"
#include "mmkd/distill/distill_objective.h"

namespace mmkd::distill {
namespace {

using mmkd::testing::repo_path;
using mmkd::testing::run_cli;
using mmkd::testing::TempDir;

using mmkd::testing::kInf;

/// An objective of configuration 5 with one term of `method` (YAML flow map of its keys).
struct OneTerm {
  TinyData tiny;
  models::MultimodalNet teacher{nullptr}, student{nullptr};
  std::unique_ptr<DistillObjective> objective;
  explicit OneTerm(const std::string& term) {
    torch::manual_seed(0);
    teacher = models::build_model(teacher_config(models::TeacherArch::kComplete), tiny.shape);
    student = models::build_model(
        student_config(models::StudentArch::kLanguageAudio, models::ProxyMode::kDownsample),
        tiny.shape);
    const YAML::Node node = YAML::Load("{alpha: 1.0, terms: [" + term + "]}");
    objective = std::make_unique<DistillObjective>(parse_distill_config(node), student, teacher,
                                                   tiny.data.split("train"), 0);
  }
  torch::Tensor loss(const models::ModelOutput& s, const models::ModelOutput& t) {
    return objective->kd_loss(tiny.batch(), s, t);
  }
};

TEST(KdTerms, RegistryKnowsEveryMethodAndAlias) {
  const auto names = kd_terms().names();
  for (const char* name :
       {"crd", "crd_final", "crd_penultimate", "crd_post_attention", "crd_attention_map", "edam",
        "ideal_map", "logit_kd", "fitnet", "minilm", "tinybert"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
  EXPECT_NE(kd_term_list().find("tinybert"), std::string::npos);
}

TEST(KdTerms, LogitKdIsTSquaredKlOfSoftenedDistributions) {
  OneTerm setup("{method: logit_kd, temperature: 2.0, weight: 0.5}");
  torch::manual_seed(1);
  models::ModelOutput s, t;
  s.logits = torch::randn({3, 7}, torch::kDouble).to(torch::kFloat);
  t.logits = torch::randn({3, 7}, torch::kDouble).to(torch::kFloat);
  double expected = 0;
  for (int64_t b = 0; b < 3; ++b) {
    double zs = 0, zt = 0;
    for (int64_t c = 0; c < 7; ++c) {
      zs += std::exp(s.logits[b][c].item<double>() / 2);
      zt += std::exp(t.logits[b][c].item<double>() / 2);
    }
    for (int64_t c = 0; c < 7; ++c) {
      const double ps = std::exp(s.logits[b][c].item<double>() / 2) / zs;
      const double pt = std::exp(t.logits[b][c].item<double>() / 2) / zt;
      expected += pt * std::log(pt / ps);
    }
  }
  expected = 0.5 * 4.0 * expected / 3;  // weight * T² * mean over the batch
  EXPECT_NEAR(setup.loss(s, t).item<double>(), expected, 1e-6);
}

TEST(KdTerms, FitnetIsTheSquaredErrorOfTheRegressedVector) {
  OneTerm setup("{method: fitnet}");
  const auto params = setup.objective->parameters();
  ASSERT_EQ(params.size(), 2u) << "one Linear regressor: weight and bias";
  const auto w = params[0].detach().to(torch::kDouble),
             bias = params[1].detach().to(torch::kDouble);
  torch::manual_seed(2);
  models::ModelOutput s, t;
  s.penultimate = torch::randn({4, w.size(1)});
  t.penultimate = torch::randn({4, w.size(0)});
  double sum = 0;
  for (int64_t b = 0; b < 4; ++b) {
    for (int64_t o = 0; o < w.size(0); ++o) {
      double y = bias[o].item<double>();
      for (int64_t i = 0; i < w.size(1); ++i)
        y += w[o][i].item<double>() * s.penultimate[b][i].item<double>();
      const double d = y - t.penultimate[b][o].item<double>();
      sum += d * d;
    }
  }
  EXPECT_NEAR(setup.loss(s, t).item<double>(), sum / (4.0 * w.size(0)), 1e-5);
}

/// Logits [B=2, H=2, Tq=3, Tk=4] with masked (-inf) entries, one row fully masked.
torch::Tensor masked_logits(uint64_t seed) {
  torch::manual_seed(seed);
  auto logits = torch::randn({2, 2, 3, 4});
  logits.index_put_({0, torch::indexing::Slice(), 0, 3}, -kInf);
  logits.index_put_({1, torch::indexing::Slice(), 2, torch::indexing::Slice(0, 2)}, -kInf);
  logits.index_put_({1, 0, 0}, -kInf);  // sample 1, head 0, row 0 sees nothing
  return logits;
}

/// Taps of both configuration-5 pairs, `layers` layers each, from `logits(seed)`.
models::ModelOutput with_logit_taps(uint64_t seed, int layers) {
  models::ModelOutput out;
  for (const std::string pair : {"V<-A", "V<-L"}) {
    for (int l = 0; l < layers; ++l) {
      nn::LayerTaps taps;
      taps.logits = masked_logits(seed + 10 * l + (pair == "V<-L" ? 5 : 0));
      out.taps[pair].push_back(taps);
    }
  }
  return out;
}

/// Per-head KL(t || s) averaged over rows where both see a key, by loops.
double reference_kl(const torch::Tensor& s_logits, const torch::Tensor& t_logits) {
  double total = 0;
  int rows = 0;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t q = 0; q < 3; ++q) {
        double zs = 0, zt = 0;
        for (int64_t k = 0; k < 4; ++k) {
          const double a = s_logits[b][h][q][k].item<double>();
          const double c = t_logits[b][h][q][k].item<double>();
          if (std::isfinite(a)) zs += std::exp(a);
          if (std::isfinite(c)) zt += std::exp(c);
        }
        if (zs == 0 || zt == 0) continue;
        ++rows;
        for (int64_t k = 0; k < 4; ++k) {
          const double c = t_logits[b][h][q][k].item<double>();
          if (!std::isfinite(c)) continue;
          const double pt = std::exp(c) / zt;
          const double a = s_logits[b][h][q][k].item<double>();
          const double ps = std::isfinite(a) ? std::exp(a) / zs : 0.0;
          total += pt * (std::log(pt) - std::log(ps + 1e-8));
        }
      }
  return total / rows;
}

TEST(KdTerms, MinilmIsTheHeadwiseKlOfTheLastLayer) {
  OneTerm setup("{method: minilm}");
  const auto s = with_logit_taps(3, 2), t = with_logit_taps(40, 2);
  // Last layer only; mean over the two pairs.
  const double expected = (reference_kl(s.taps.at("V<-A")[1].logits, t.taps.at("V<-A")[1].logits) +
                           reference_kl(s.taps.at("V<-L")[1].logits, t.taps.at("V<-L")[1].logits)) /
                          2;
  EXPECT_NEAR(setup.loss(s, t).item<double>(), expected, 1e-5);
  OneTerm all("{method: minilm, layers: all}");
  double sum = 0;
  for (const std::string pair : {"V<-A", "V<-L"})
    for (int l = 0; l < 2; ++l)
      sum += reference_kl(s.taps.at(pair)[l].logits, t.taps.at(pair)[l].logits);
  EXPECT_NEAR(all.loss(s, t).item<double>(), sum / 4, 1e-5);
}

TEST(KdTerms, TinybertIsTheMseOfLogitsVisibleInBoth) {
  OneTerm setup("{method: tinybert}");
  const auto s = with_logit_taps(5, 2), t = with_logit_taps(50, 2);
  double sum = 0;
  for (const std::string pair : {"V<-A", "V<-L"}) {
    for (int l = 0; l < 2; ++l) {
      const auto& a = s.taps.at(pair)[l].logits;
      const auto& b = t.taps.at(pair)[l].logits;
      double squares = 0;
      int count = 0;
      for (int64_t i = 0; i < a.numel(); ++i) {
        const double x = a.view(-1)[i].item<double>(), y = b.view(-1)[i].item<double>();
        if (!std::isfinite(x) || !std::isfinite(y)) continue;
        squares += (x - y) * (x - y);
        ++count;
      }
      sum += squares / count;
    }
  }
  EXPECT_NEAR(setup.loss(s, t).item<double>(), sum / 4, 1e-5);
}

TEST(KdTerms, GradientsOfTheAttentionTermsReachOnlyTheStudentsLogits) {
  for (const std::string method : {"minilm", "tinybert"}) {
    OneTerm setup("{method: " + method + "}");
    auto s = with_logit_taps(7, 2);
    const auto t = with_logit_taps(70, 2);
    for (auto& [name, layers] : s.taps)
      for (auto& layer : layers) layer.logits.requires_grad_(true);
    setup.loss(s, t).backward();
    const auto& g = s.taps.at("V<-A")[1].logits.grad();
    ASSERT_TRUE(g.defined()) << method;
    EXPECT_TRUE(torch::isfinite(g).all().item<bool>()) << method << ": masked entries give NaN";
    EXPECT_GT(g.abs().sum().item<double>(), 0) << method;
  }
}

std::string distill_error_of(const std::string& yaml) {
  try {
    parse_distill_config(YAML::Load(yaml));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(KdTerms, ListFormErrorsNameTheKey) {
  EXPECT_NE(distill_error_of("{terms: [{method: tinybret}]}")
                .find("'distill.terms[0].method': unknown method 'tinybret' (did you mean "
                      "'tinybert'?)"),
            std::string::npos)
      << distill_error_of("{terms: [{method: tinybret}]}");
  EXPECT_NE(distill_error_of("{terms: [{method: edam, temprature: 2}]}")
                .find("unknown config key 'distill.terms[0].temprature'"),
            std::string::npos)
      << distill_error_of("{terms: [{method: edam, temprature: 2}]}");
  EXPECT_NE(distill_error_of("{method: edam, terms: [{method: edam}]}")
                .find("'distill.method': the list form (distill.terms) sets this per term"),
            std::string::npos);
  try {  // a term's own values are checked when the objective is built, before training
    OneTerm bad("{method: crd, level: middle}");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'distill.terms[0].level': expected final, "
                                         "penultimate, post_attention or attention_map, got "
                                         "'middle'"),
              std::string::npos)
        << e.what();
  }
  EXPECT_NE(distill_error_of("{terms: [{method: crd_final, level: penultimate}]}")
                .find("method crd_final means level: final"),
            std::string::npos);
  EXPECT_NE(distill_error_of("{terms: [{weight: 1}]}").find("missing 'method'"), std::string::npos);
  // A pair outside the configuration's table is refused with the valid pairs.
  try {
    OneTerm bad("{method: edam, pairs: ['A<-L']}");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'A<-L' is not a pair of configuration 5"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("its pairs are V<-A, V<-L"), std::string::npos)
        << e.what();
  }
}

TEST(KdTerms, SingleMethodFormIsOneTermOfWeightBeta) {
  const auto config = parse_distill_config(
      YAML::Load("{method: crd_penultimate, beta: 0.5, temperature: 3, crd: {embed_dim: 16}}"));
  ASSERT_EQ(config.terms.size(), 1u);
  EXPECT_EQ(config.terms[0].method, "crd");
  EXPECT_EQ(config.terms[0].weight, 0.5);
  EXPECT_EQ(config.terms[0].options["level"].as<std::string>(), "penultimate");
  EXPECT_EQ(config.terms[0].options["embed_dim"].as<int>(), 16);
  EXPECT_FALSE(config.terms[0].options["temperature"]) << "EDAM's temperature is not CRD's";
  EXPECT_TRUE(parse_distill_config(YAML::Load("{method: none}")).terms.empty());
}

TEST(KdTerms, TwoTermsTrainEndToEnd) {
  TempDir dir("two_terms");
  auto teacher = run_cli("train --config " + repo_path("configs/teacher_complete.yaml") +
                         " --set data.preset=tiny --set model.d_model=8 --set model.layers=1"
                         " --set model.heads=2 --set train.epochs=1 --set train.threads=1 --run " +
                         (dir / "teacher"));
  ASSERT_EQ(teacher.status, 0) << teacher.output;
  const std::string tiny =
      " --set data.preset=tiny --set model.d_model=8 --set model.layers=1 --set model.heads=2"
      " --set train.epochs=1 --set train.threads=1 --set train.progress=false";
  for (const std::string config :
       {"c5_crd_penultimate_edam_down", "c5_logit_kd", "c5_fitnet", "c5_minilm", "c5_tinybert"}) {
    auto run = run_cli("distill --config " + repo_path("configs/extended/" + config + ".yaml") +
                       tiny + " --teacher " + (dir / "teacher") + " --run " + (dir / config));
    ASSERT_EQ(run.status, 0) << config << "\n" << run.output;
    const auto metrics = nlohmann::json::parse(std::ifstream(dir / (config + "/metrics.json")));
    if (config == "c5_crd_penultimate_edam_down") {
      EXPECT_EQ(metrics["distill"]["method"], "crd_penultimate+edam-down") << metrics.dump();
      EXPECT_EQ(metrics["distill"]["terms"].size(), 2u);
    }
  }
}

}  // namespace
}  // namespace mmkd::distill
