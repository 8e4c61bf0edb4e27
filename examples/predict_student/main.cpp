// Loads a video-only student checkpoint and predicts the sentiment class of one clip.
//   predict_student STUDENT.pt CLIP.npy      (CLIP: video features [T, 35])
#include <mmkd/data/npy.h>
#include <mmkd/train/checkpoint.h>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: predict_student STUDENT.pt CLIP.npy\n";
    return 2;
  }
  try {
    mmkd::models::MultimodalNet student = mmkd::train::load_model(argv[1], torch::kCPU);
    mmkd::models::ModelInputs inputs;
    const auto video = mmkd::data::modality_index(mmkd::data::Modality::kVideo);
    inputs.features[video] = mmkd::data::read_npy(argv[2]).to(torch::kFloat).unsqueeze(0);
    c10::InferenceMode inference;
    const torch::Tensor probabilities = torch::softmax(student->forward(inputs).logits[0], 0);
    const int64_t predicted = probabilities.argmax().item<int64_t>();
    std::cout << "sentiment class " << predicted - 3
              << " (p = " << probabilities[predicted].item<double>() << ")\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
