#include "mmkd/data/batch_loader.h"

#include "mmkd/core/error.h"
#include "mmkd/train/labels.h"

namespace mmkd::data {

Batch Batch::to(const torch::Device& device) const {
  Batch moved;
  for (size_t m = 0; m < 3; ++m) {
    moved.features[m] = features[m].to(device, /*non_blocking=*/true);
    moved.padding[m] = padding[m].to(device, true);
    if (events[m].defined()) moved.events[m] = events[m].to(device, true);
  }
  moved.classes = classes.to(device, true);
  moved.targets = targets.to(device, true);
  moved.index = index.to(device, true);
  return moved;
}

torch::Tensor padding_mask(const torch::Tensor& features) {
  MMKD_CHECK(features.dim() == 3, "padding_mask: expected features [N,T,F], got rank ",
             features.dim());
  return features.eq(0).all(/*dim=*/-1);
}

BatchLoader::BatchLoader(const Split& split, BatchLoaderOptions options)
    : split_(split), options_(options), num_samples_(split.size()) {
  MMKD_CHECK(options_.batch_size > 0, "batch size must be positive, got ", options_.batch_size);
  MMKD_CHECK(num_samples_ > 0, "cannot batch an empty split");
  for (size_t m = 0; m < 3; ++m) padding_[m] = padding_mask(split.features[m]);
  classes_ = train::sentiment_to_class(split.labels);
  set_epoch(0);
}

int64_t BatchLoader::num_batches() const {
  const int64_t full = num_samples_ / options_.batch_size;
  const bool partial = num_samples_ % options_.batch_size != 0;
  return full + (partial && !options_.drop_last ? 1 : 0);
}

void BatchLoader::set_epoch(int64_t epoch) {
  if (!options_.shuffle) {
    order_ = torch::arange(num_samples_, torch::kLong);
    return;
  }
  // A generator per epoch (not one advancing stream) keeps resumed runs identical.
  auto generator = at::make_generator<at::CPUGeneratorImpl>(
      options_.seed * 1000003ULL + static_cast<uint64_t>(epoch) * 7919ULL + 17ULL);
  order_ = torch::randperm(num_samples_, generator, torch::kLong);
}

Batch BatchLoader::batch(int64_t i) const {
  MMKD_CHECK(i >= 0 && i < num_batches(), "batch index ", i, " out of range [0, ", num_batches(),
             ")");
  const int64_t begin = i * options_.batch_size;
  const int64_t end = std::min(begin + options_.batch_size, num_samples_);
  const torch::Tensor index = order_.slice(0, begin, end);
  Batch batch;
  for (size_t m = 0; m < 3; ++m) {
    batch.features[m] = split_.features[m].index_select(0, index);
    batch.padding[m] = padding_[m].index_select(0, index);
    if (split_.events[m].defined()) batch.events[m] = split_.events[m].index_select(0, index);
  }
  batch.classes = classes_.index_select(0, index);
  batch.targets = split_.labels.index_select(0, index);
  batch.index = index.clone();
  return batch;
}

}  // namespace mmkd::data
