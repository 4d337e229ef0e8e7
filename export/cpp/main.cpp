// edgemtl_infer: run an edgemtl export on one image with the ONNX Runtime C++ API and OpenCV.
//
//   edgemtl_infer model.onnx scene.png
//
// Everything the program needs comes from the file itself: the input size from the graph, the
// outputs by name, the task list from metadata_props. The graph does the preprocessing (uint8 BGR
// NHWC in) and the postprocessing (probabilities, labels, a uint8 class mask), so this file holds
// no normalization constants and no softmax.
#include <onnxruntime_cxx_api.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The first values of a tensor; `+` prints a uint8 as a number, not a character.
template <typename T>
void print_values(const Ort::Value& value, size_t count) {
  const T* data = value.GetTensorData<T>();
  const size_t shown = std::min<size_t>(count, 16);  // a mask's logits would fill the screen
  std::cout << ":";
  for (size_t i = 0; i < shown; ++i) std::cout << " " << +data[i];
  if (shown < count) std::cout << " ... (" << count << " values)";
}

// One output of the first frame (a fixed-batch export repeats the frame): floats (probabilities,
// values, logits) and integers (labels, flags) as they are; a mask as its share of pixels per class
// id, once resized back to the image's size as edgemtl's Python Engine does, so the numbers match.
void print_output(const std::string& name, const Ort::Value& value, const cv::Size& image_size) {
  const auto info = value.GetTensorTypeAndShapeInfo();
  const std::vector<int64_t> shape = info.GetShape();
  const size_t count = info.GetElementCount() / static_cast<size_t>(shape[0]);
  std::cout << name;
  if (ends_with(name, "_mask") && shape.size() == 3) {
    const cv::Mat mask(static_cast<int>(shape[1]), static_cast<int>(shape[2]), CV_8UC1,
                       const_cast<uint8_t*>(value.GetTensorData<uint8_t>()));
    cv::Mat full;
    cv::resize(mask, full, image_size, 0, 0, cv::INTER_NEAREST);
    std::map<int, size_t> pixels;
    for (auto it = full.begin<uint8_t>(); it != full.end<uint8_t>(); ++it) ++pixels[*it];
    std::cout << " (" << full.cols << "x" << full.rows << " pixels), share per class id:";
    for (const auto& [id, n] : pixels) std::cout << " " << id << "=" << double(n) / full.total();
  } else if (info.GetElementType() == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
    print_values<float>(value, count);
  } else if (info.GetElementType() == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64) {
    print_values<int64_t>(value, count);
  } else if (info.GetElementType() == ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8) {
    print_values<uint8_t>(value, count);
  } else {
    std::cout << ": " << count << " values of ONNX type " << info.GetElementType();
  }
  std::cout << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: edgemtl_infer MODEL.onnx IMAGE\n";
    return 2;
  }
  try {
    Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "edgemtl");
    Ort::SessionOptions options;
    options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    Ort::Session session(env, argv[1], options);
    Ort::AllocatorWithDefaultOptions allocator;

    Ort::ModelMetadata metadata = session.GetModelMetadata();
    auto format = metadata.LookupCustomMetadataMapAllocated("edgemtl.format", allocator);
    if (!format || std::string(format.get()) != "edgemtl-onnx") {
      std::cerr << "error: " << argv[1] << " is not an edgemtl export (no edgemtl.format metadata)\n";
      return 1;
    }
    for (const char* key : {"edgemtl.tasks", "edgemtl.precision"}) {
      auto value = metadata.LookupCustomMetadataMapAllocated(key, allocator);
      std::cout << key << ": " << (value ? value.get() : "(missing)") << "\n";
    }

    // Input: [batch, height, width, 3] uint8 BGR; a dynamic axis shows as -1. A file exported with
    // --frame-size dynamic takes the image as it is (it resizes inside); otherwise it is resized to the input.
    const std::vector<int64_t> shape = session.GetInputTypeInfo(0).GetTensorTypeAndShapeInfo().GetShape();
    cv::Mat image = cv::imread(argv[2], cv::IMREAD_COLOR);
    if (image.empty()) {
      std::cerr << "error: cannot read image " << argv[2] << "\n";
      return 1;
    }
    const int64_t batch = shape[0] > 0 ? shape[0] : 1;
    const int64_t height = shape[1] > 0 ? shape[1] : image.rows, width = shape[2] > 0 ? shape[2] : image.cols;
    cv::Mat resized = image;
    if (image.rows != height || image.cols != width)
      cv::resize(image, resized, cv::Size(static_cast<int>(width), static_cast<int>(height)), 0, 0, cv::INTER_AREA);
    std::vector<uint8_t> frames(static_cast<size_t>(batch) * resized.total() * 3);
    for (int64_t b = 0; b < batch; ++b)  // a fixed-batch export gets the frame repeated
      std::copy(resized.data, resized.data + resized.total() * 3, frames.begin() + b * resized.total() * 3);

    const std::array<int64_t, 4> input_shape{batch, height, width, 3};
    auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    Ort::Value input = Ort::Value::CreateTensor<uint8_t>(memory, frames.data(), frames.size(), input_shape.data(),
                                                         input_shape.size());
    auto input_name = session.GetInputNameAllocated(0, allocator);
    std::vector<Ort::AllocatedStringPtr> owned_names;
    std::vector<const char*> output_names;
    for (size_t i = 0; i < session.GetOutputCount(); ++i) {
      owned_names.push_back(session.GetOutputNameAllocated(i, allocator));
      output_names.push_back(owned_names.back().get());
    }
    const char* input_names[] = {input_name.get()};
    auto outputs = session.Run(Ort::RunOptions{nullptr}, input_names, &input, 1, output_names.data(),
                               output_names.size());
    std::cout << std::fixed << std::setprecision(6);
    for (size_t i = 0; i < outputs.size(); ++i) print_output(output_names[i], outputs[i], image.size());
  } catch (const std::exception& error) {  // Ort::Exception, cv::Exception and allocation failures
    std::cerr << "error: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
