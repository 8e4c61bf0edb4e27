#include "mmkd/distill/teacher_cache.h"

#include <cstdio>

#include "mmkd/core/error.h"
#include "mmkd/data/batch_loader.h"

namespace mmkd::distill {

void for_each_tensor(models::ModelOutput& output, const std::function<void(torch::Tensor&)>& fn) {
  if (output.logits.defined()) fn(output.logits);
  if (output.penultimate.defined()) fn(output.penultimate);
  for (auto& entry : output.taps) {
    for (auto& layer : entry.second) {
      for (torch::Tensor* t : {&layer.logits, &layer.map, &layer.post_attention, &layer.output})
        if (t->defined()) fn(*t);
    }
  }
}

namespace {

std::string megabytes(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", bytes / 1e6);
  return text;
}

/// `first`'s structure with every tensor [num_samples, ...] and zero-filled, on the host.
models::ModelOutput allocate_rows(models::ModelOutput first, int64_t num_samples) {
  for_each_tensor(first, [&](torch::Tensor& t) {
    std::vector<int64_t> sizes = t.sizes().vec();
    sizes[0] = num_samples;
    t = torch::zeros(sizes, t.options().device(torch::kCPU));
  });
  return first;
}

}  // namespace

TeacherCache::TeacherCache(models::ModelOutput rows) : rows_(std::move(rows)) {
  for_each_tensor(rows_, [&](torch::Tensor& t) {
    num_samples_ = t.size(0);
    bytes_ += t.numel() * t.element_size();
  });
}

std::unique_ptr<TeacherCache> TeacherCache::build(models::MultimodalNet& teacher,
                                                  const models::TapRequest& taps,
                                                  const data::Split& split,
                                                  const torch::Device& device, int64_t budget_bytes,
                                                  int64_t batch_size, std::string* declined) {
  MMKD_CHECK(!teacher->is_training(),
             "teacher cache: the teacher must be frozen (eval mode), or its dropout would make "
             "each epoch's outputs differ");
  torch::NoGradGuard no_grad;
  data::BatchLoaderOptions options;
  options.batch_size = batch_size;
  options.shuffle = false;
  data::BatchLoader loader(split, options);
  const int64_t n = loader.num_samples();
  if (n == 0) {
    if (declined) *declined = "the split has no samples";
    return nullptr;
  }
  models::ModelOutput rows;
  for (int64_t b = 0; b < loader.num_batches(); ++b) {
    const data::Batch batch = loader.batch(b).to(device);
    models::ModelOutput out =
        teacher->forward(models::ModelInputs{batch.features, batch.padding}, taps);
    if (b == 0) {
      double per_sample = 0;
      for_each_tensor(out, [&](torch::Tensor& t) {
        per_sample += static_cast<double>(t.numel() * t.element_size()) / t.size(0);
      });
      const double needed = per_sample * static_cast<double>(n);
      if (needed > static_cast<double>(budget_bytes)) {
        if (declined)
          *declined = "the teacher's outputs for " + std::to_string(n) + " samples need " +
                      megabytes(needed) + ", over distill.teacher_cache_mb (" +
                      megabytes(static_cast<double>(budget_bytes)) + ")";
        return nullptr;
      }
      rows = allocate_rows(out, n);
    }
    // Written at the batch's own sample positions, so the order the loader serves them in does
    // not matter.
    const torch::Tensor index = batch.index.to(torch::kCPU);
    std::vector<torch::Tensor> parts;
    for_each_tensor(out, [&](torch::Tensor& t) { parts.push_back(t); });
    size_t i = 0;
    for_each_tensor(rows, [&](torch::Tensor& t) { t.index_copy_(0, index, parts[i++].cpu()); });
  }
  return std::unique_ptr<TeacherCache>(new TeacherCache(std::move(rows)));
}

models::ModelOutput TeacherCache::lookup(const torch::Tensor& index,
                                         const torch::Device& device) const {
  MMKD_CHECK(index.defined() && index.dim() == 1,
             "teacher cache: a batch needs its sample index int64 [B] to read its rows");
  const torch::Tensor rows = index.to(torch::kCPU);
  MMKD_CHECK(rows.numel() == 0 ||
                 (rows.min().item<int64_t>() >= 0 && rows.max().item<int64_t>() < num_samples_),
             "teacher cache: sample index out of range [0, ", num_samples_,
             "): the batch is not from the split the cache was built on");
  models::ModelOutput out = rows_;
  for_each_tensor(out, [&](torch::Tensor& t) { t = t.index_select(0, rows).to(device); });
  return out;
}

}  // namespace mmkd::distill
