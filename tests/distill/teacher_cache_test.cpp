// The teacher-output cache: rows equal to the teacher's forward on shuffled batches, the budget,
// refusals, and the objective serving training batches from it.
#include "mmkd/distill/teacher_cache.h"

#include <gtest/gtest.h>

#include "../support/errors.h"
#include "distill_test_util.h"
#include "mmkd/distill/distill_objective.h"

namespace mmkd::distill {
namespace {

using mmkd::testing::error_of;

std::vector<torch::Tensor> tensors_of(models::ModelOutput output) {
  std::vector<torch::Tensor> all;
  for_each_tensor(output, [&](torch::Tensor& t) { all.push_back(t); });
  return all;
}

struct Frozen {
  TinyData tiny;
  models::MultimodalNet teacher{nullptr};
  Frozen() {
    torch::manual_seed(3);
    teacher = models::build_model(teacher_config(models::TeacherArch::kComplete), tiny.shape);
    freeze(teacher);
  }
  std::unique_ptr<TeacherCache> cache(int64_t budget, std::string* declined = nullptr) {
    return TeacherCache::build(teacher, models::TapRequest::all(), tiny.data.split("train"),
                               torch::kCPU, budget, /*batch_size=*/5, declined);
  }
};

TEST(TeacherCache, RowsEqualTheTeachersForwardOnShuffledBatches) {
  Frozen f;
  std::string declined;
  const auto cache = f.cache(int64_t{1} << 30, &declined);
  ASSERT_NE(cache, nullptr) << declined;
  EXPECT_EQ(cache->num_samples(), f.tiny.data.split("train").size());
  data::BatchLoaderOptions options;
  options.batch_size = 7;
  options.seed = 11;
  data::BatchLoader loader(f.tiny.data.split("train"), options);
  loader.set_epoch(2);
  int64_t compared = 0;
  for (int64_t b = 0; b < loader.num_batches(); ++b) {
    const data::Batch batch = loader.batch(b);
    torch::NoGradGuard no_grad;
    const auto want = tensors_of(f.teacher->forward(
        models::ModelInputs{batch.features, batch.padding}, models::TapRequest::all()));
    const auto got = tensors_of(cache->lookup(batch.index, torch::kCPU));
    ASSERT_EQ(got.size(), want.size());
    // logits, penultimate and four taps for each layer of each transformer
    EXPECT_GT(got.size(), 10u);
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i].sizes(), want[i].sizes()) << "tensor " << i;
      // Masked attention logits are -inf in both; allclose counts equal infinities as close.
      // Rounding differs with the batch's composition: up to 4e-6 on OpenBLAS (Debian stack).
      EXPECT_TRUE(torch::allclose(got[i], want[i], 1e-4, 1e-5))
          << "batch " << b << ", tensor " << i << ": max difference "
          << (got[i] - want[i]).abs().nan_to_num(0, 0, 0).max().item<double>();
      ++compared;
    }
  }
  EXPECT_GT(compared, 0);
}

TEST(TeacherCache, DeclinesOverItsBudgetSayingHowMuchItNeeds) {
  Frozen f;
  std::string declined;
  EXPECT_EQ(f.cache(1000, &declined), nullptr);
  EXPECT_NE(declined.find("MB, over distill.teacher_cache_mb (0.0 MB)"), std::string::npos)
      << declined;
  EXPECT_NE(declined.find(std::to_string(f.tiny.data.split("train").size()) + " samples"),
            std::string::npos)
      << declined;
}

TEST(TeacherCache, RefusesATeacherInTrainingModeAndIndicesOutsideTheSplit) {
  Frozen f;
  f.teacher->train();
  EXPECT_NE(error_of([&] { f.cache(int64_t{1} << 30); }).find("eval mode"), std::string::npos);
  f.teacher->eval();
  const auto cache = f.cache(int64_t{1} << 30);
  ASSERT_NE(cache, nullptr);
  const auto outside = torch::tensor({int64_t{0}, cache->num_samples()});
  EXPECT_NE(error_of([&] { cache->lookup(outside, torch::kCPU); }).find("out of range [0, "),
            std::string::npos);
}

TEST(TeacherCache, ObjectiveServesTrainingBatchesFromItAndValidationFromTheTeacher) {
  TinyData tiny;
  torch::manual_seed(5);
  auto teacher = models::build_model(teacher_config(models::TeacherArch::kComplete), tiny.shape);
  auto student = models::build_model(
      student_config(models::StudentArch::kLanguageAudio, models::ProxyMode::kDownsample),
      tiny.shape);
  YAML::Node node;
  node["method"] = "edam";
  DistillObjective plain(parse_distill_config(node), student, teacher, tiny.data.split("train"), 0);
  DistillObjective cached(parse_distill_config(node), student, teacher, tiny.data.split("train"),
                          0);
  cached.use_teacher_cache(tiny.data.split("train"), int64_t{1} << 30);
  EXPECT_EQ(cached.teacher_cache(), nullptr) << "built on the first training batch, not before";

  const data::Batch batch = tiny.batch(8);
  const auto output =
      student->forward(models::ModelInputs{batch.features, batch.padding}, plain.taps());
  const double validation = cached.compute(batch, output, /*training=*/false).kd.item<double>();
  EXPECT_EQ(cached.teacher_cache(), nullptr) << "validation batches run the teacher";
  const double with_cache = cached.compute(batch, output, /*training=*/true).kd.item<double>();
  ASSERT_NE(cached.teacher_cache(), nullptr);
  const double without = plain.compute(batch, output, /*training=*/true).kd.item<double>();
  EXPECT_NEAR(with_cache, without, 1e-6 * std::max(1.0, std::abs(without)));
  EXPECT_NEAR(validation, without, 1e-6 * std::max(1.0, std::abs(without)));
}

TEST(TeacherCache, BudgetKeyIsValidated) {
  YAML::Node node;
  node["teacher_cache_mb"] = -1;
  EXPECT_NE(error_of([&] {
              parse_distill_config(node);
            }).find("config key 'distill.teacher_cache_mb': must be >= 0"),
            std::string::npos);
  node["teacher_cache_mb"] = 0;
  EXPECT_EQ(parse_distill_config(node).teacher_cache_mb, 0);
}

}  // namespace
}  // namespace mmkd::distill
