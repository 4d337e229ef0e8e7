// edgemtl_infer: run an edgemtl export on one image with the ONNX Runtime C++ API and OpenCV.
//
//   edgemtl_infer model.onnx scene.png
//   edgemtl_infer vector.onnx table.csv     (a vector model: the table's first row of features)
//
// Everything the program needs comes from the file itself: the input size from the graph, the
// outputs by name, the task list and the resize policy from metadata_props. The graph does the
// preprocessing (uint8 BGR NHWC in) and the postprocessing (probabilities, labels, a uint8 class
// mask, a detection task's final boxes after suppression), so this file holds no normalization
// constants, no softmax and no NMS. The resize policy (stretch, letterbox, crop) is applied as
// edgemtl/resize.py defines it: the same boxes, the same rounding; masks and boxes are mapped back
// to the image's own pixels as the Python Engine maps them.
#include <onnxruntime_cxx_api.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "json.hpp"

namespace {

using edgemtl_json::Value;

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Where a frame's pixels go (edgemtl.resize.fit): `source`, the part of the frame used, is resized into
// `target`, the part of the model input it fills; the rest of the input is padding (PAD_VALUE, black).
struct Fit {
  cv::Rect source, target;
};

int round_half_up(double value) { return static_cast<int>(std::floor(value + 0.5)); }

Fit fit(const cv::Size& frame, const cv::Size& input, const std::string& policy) {
  Fit where{cv::Rect(0, 0, frame.width, frame.height), cv::Rect(0, 0, input.width, input.height)};
  if (policy == "letterbox") {
    const double scale = std::min(double(input.height) / frame.height, double(input.width) / frame.width);
    const int h = std::max(1, std::min(input.height, round_half_up(frame.height * scale)));
    const int w = std::max(1, std::min(input.width, round_half_up(frame.width * scale)));
    where.target = cv::Rect((input.width - w) / 2, (input.height - h) / 2, w, h);
  } else if (policy == "crop") {
    const double scale = std::max(double(input.height) / frame.height, double(input.width) / frame.width);
    const int h = std::max(1, std::min(frame.height, round_half_up(input.height / scale)));
    const int w = std::max(1, std::min(frame.width, round_half_up(input.width / scale)));
    where.source = cv::Rect((frame.width - w) / 2, (frame.height - h) / 2, w, h);
  }
  return where;
}

// The frame as the model's input: area averaging of the source box into the target box.
cv::Mat prepare(const cv::Mat& image, const cv::Size& input, const Fit& where) {
  if (image.size() == input) return image;
  cv::Mat resized(input, CV_8UC3, cv::Scalar::all(0));
  cv::Mat content = resized(where.target);
  cv::resize(image(where.source), content, where.target.size(), 0, 0, cv::INTER_AREA);
  return resized;
}

// A model-sized class mask back in the frame's coordinates: padding cut away, resized (nearest) onto the
// part of the frame that was seen, a crop's unseen borders taking the nearest edge's class.
cv::Mat restore_mask(const cv::Mat& mask, const cv::Size& frame, const Fit& where) {
  cv::Mat content;
  cv::resize(mask(where.target), content, where.source.size(), 0, 0, cv::INTER_NEAREST);
  if (content.size() == frame) return content;
  cv::Mat full;
  const cv::Rect& s = where.source;
  cv::copyMakeBorder(content, full, s.y, frame.height - s.y - s.height, s.x, frame.width - s.x - s.width,
                     cv::BORDER_REPLICATE);
  return full;
}

// A box x1 y1 x2 y2 in the model input's pixels → the frame's (edgemtl.resize.restore_boxes): out of the
// letterbox padding, scaled from the part of the input the frame filled onto the part of the frame that was
// seen (a crop placed back where it was cut), clipped to the frame. In float32, as NumPy computes it there.
std::array<float, 4> restore_box(const std::array<float, 4>& box, const cv::Size& frame, const Fit& where) {
  const cv::Rect &s = where.source, &t = where.target;
  const float scale[2] = {float(double(s.width) / t.width), float(double(s.height) / t.height)};
  const float offset_in[2] = {float(t.x), float(t.y)}, offset_out[2] = {float(s.x), float(s.y)};
  const float limit[2] = {float(frame.width), float(frame.height)};
  std::array<float, 4> out{};
  for (int i = 0; i < 4; ++i)
    out[i] = std::clamp((box[i] - offset_in[i % 2]) * scale[i % 2] + offset_out[i % 2], 0.0f, limit[i % 2]);
  return out;
}

// The metadata_props value under `key` as JSON (`fallback` when the file has none).
Value json_prop(Ort::ModelMetadata& metadata, Ort::AllocatorWithDefaultOptions& allocator, const char* key,
                const char* fallback) {
  auto text = metadata.LookupCustomMetadataMapAllocated(key, allocator);
  try {
    return edgemtl_json::parse(text ? text.get() : fallback);
  } catch (const std::exception& error) {
    throw std::runtime_error(std::string(key) + ": " + error.what());
  }
}

// The policy recorded in edgemtl.input ({"resize": "letterbox", ...}); files without one are "stretch".
std::string resize_policy(const Value& input) {
  const std::string policy = input.string_or("resize", "stretch");
  if (policy != "stretch" && policy != "letterbox" && policy != "crop")
    throw std::runtime_error("edgemtl.input names resize policy '" + policy + "': expected stretch, letterbox or crop");
  return policy;
}

// Element `i` of a tensor of numbers as a double, whatever its ONNX type (a count may be int64 or int32).
double number_at(const Ort::Value& value, size_t i) {
  const ONNXTensorElementDataType type = value.GetTensorTypeAndShapeInfo().GetElementType();
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return value.GetTensorData<float>()[i];
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return value.GetTensorData<Ort::Float16_t>()[i].ToFloat();
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return value.GetTensorData<double>()[i];
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return double(value.GetTensorData<int64_t>()[i]);
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return value.GetTensorData<int32_t>()[i];
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return value.GetTensorData<uint8_t>()[i];
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return value.GetTensorData<bool>()[i];
    default: throw std::runtime_error("an output of ONNX type " + std::to_string(type) + ": expected numbers");
  }
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
// id, once mapped back to the image's size as edgemtl's Python Engine does, so the numbers match.
void print_output(const std::string& name, const Ort::Value& value, const cv::Size& image_size, const Fit& where) {
  const auto info = value.GetTensorTypeAndShapeInfo();
  const std::vector<int64_t> shape = info.GetShape();
  const size_t count = info.GetElementCount() / static_cast<size_t>(shape[0]);
  std::cout << name;
  if (ends_with(name, "_mask") && shape.size() == 3) {
    const cv::Mat mask(static_cast<int>(shape[1]), static_cast<int>(shape[2]), CV_8UC1,
                       const_cast<uint8_t*>(value.GetTensorData<uint8_t>()));
    const cv::Mat full = mask.size() == image_size ? mask : restore_mask(mask, image_size, where);
    std::map<int, size_t> pixels;
    for (auto it = full.begin<uint8_t>(); it != full.end<uint8_t>(); ++it) ++pixels[*it];
    std::cout << " (" << full.rows << "x" << full.cols << " pixels), share per class id:";
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

// A detection task's final boxes for the first frame, from its four outputs, named in edgemtl.outputs under the
// fields boxes (N, K, 4) float32 x1 y1 x2 y2, scores (N, K) float32 best first, classes (N, K) int64 indices
// into the task's classes, and count (N) int64, the rows that are boxes (K: the task's max_detections). Printed:
// `count` rows of class name (id), score and box in the image's pixels. A graph run at another size than the
// image's (a model-size file) returns boxes in its input's pixels: they are mapped back under the resize
// policy, as the Python Engine maps them. A graph run at the image's own size (a frame-sized export, or an
// image already at the model's size) returns them where they belong.
void print_objects(const Value& task, const Value& fields, const std::map<std::string, const Ort::Value*>& outputs,
                   const cv::Size& image_size, const cv::Size& input_size, const Fit& where) {
  const std::string name = task.string_or("name", "");
  auto output = [&](const char* field) -> const Ort::Value& {
    const std::string output_name = fields.string_or(field, "");
    const auto found = outputs.find(output_name);
    if (found == outputs.end())
      throw std::runtime_error("edgemtl.outputs." + name + "." + field + " is '" + output_name +
                               "', which the graph lacks");
    return *found->second;
  };
  const Ort::Value &boxes = output("boxes"), &scores = output("scores"), &classes = output("classes");
  const std::vector<int64_t> shape = boxes.GetTensorTypeAndShapeInfo().GetShape();
  if (shape.size() != 3 || shape[2] != 4) throw std::runtime_error("task " + name + ": boxes are not (N, K, 4)");
  const int64_t kept = std::clamp<int64_t>(static_cast<int64_t>(number_at(output("count"), 0)), 0, shape[1]);
  const std::vector<Value>& names = task.at("classes").items;
  std::cout << name << " (detection): " << kept << " objects, class (id) score and box x1 y1 x2 y2 in the image's "
            << "pixels (" << image_size.height << "x" << image_size.width << ", height x width)\n";
  for (int64_t i = 0; i < kept; ++i) {
    const auto id = static_cast<int64_t>(number_at(classes, size_t(i)));
    if (id < 0 || id >= static_cast<int64_t>(names.size()))
      throw std::runtime_error("task " + name + ": the graph returned class id " + std::to_string(id) +
                               ", the metadata names " + std::to_string(names.size()) + " classes");
    std::array<float, 4> box{};
    for (size_t j = 0; j < 4; ++j) box[j] = static_cast<float>(number_at(boxes, size_t(i) * 4 + j));
    if (image_size != input_size) box = restore_box(box, image_size, where);
    std::cout << "  " << names[size_t(id)].text << " (" << id << ") score " << number_at(scores, size_t(i)) << " box "
              << box[0] << " " << box[1] << " " << box[2] << " " << box[3] << "\n";
  }
}

// Every output of the first frame: a detection task's four as its objects (after the other outputs), each
// other output on a line of its own.
void print_results(const Value& tasks, const Value& output_map, const std::vector<const char*>& names,
                   const std::vector<Ort::Value>& values, const cv::Size& image_size, const cv::Size& input_size,
                   const Fit& where) {
  std::map<std::string, const Ort::Value*> by_name;
  for (size_t i = 0; i < values.size(); ++i) by_name[names[i]] = &values[i];
  std::vector<std::pair<const Value*, const Value*>> detections;  // (task, its fields → output names)
  std::vector<std::string> shown_as_objects;
  for (const Value& task : tasks.items) {
    if (task.string_or("kind", "") != "detection") continue;
    const Value& fields = output_map.at(task.string_or("name", ""));
    detections.emplace_back(&task, &fields);
    for (const Value& output_name : fields.items) shown_as_objects.push_back(output_name.text);
  }
  for (size_t i = 0; i < values.size(); ++i)
    if (std::find(shown_as_objects.begin(), shown_as_objects.end(), names[i]) == shown_as_objects.end())
      print_output(names[i], values[i], image_size, where);
  for (const auto& [task, fields] : detections) print_objects(*task, *fields, by_name, image_size, input_size, where);
}

// The model's feature names in input order: the "features" list of edgemtl.input (a vector model).
std::vector<std::string> feature_names(const Value& input) {
  std::vector<std::string> names;
  if (const Value* features = input.find("features"))
    for (const Value& name : features->items) names.push_back(name.text);
  return names;
}

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream stream(line);
  std::string cell;
  while (std::getline(stream, cell, ',')) cells.push_back(cell);
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

// The table's first data row, as the model's features in the model's order (columns matched by name; raw
// units: the graph standardizes them). Throws naming the column that is absent or not a number.
std::vector<float> first_row(const std::string& path, const std::vector<std::string>& names) {
  std::ifstream file(path);
  std::string header_line, row_line;
  if (!file || !std::getline(file, header_line) || !std::getline(file, row_line))
    throw std::runtime_error("cannot read a header and a row from " + path);
  const auto header = split_csv_line(header_line), row = split_csv_line(row_line);
  std::vector<float> values;
  for (const auto& name : names) {
    const auto column = std::find(header.begin(), header.end(), name);
    if (column == header.end()) throw std::runtime_error(path + " has no feature column '" + name + "'");
    const std::string& cell = row.at(static_cast<size_t>(column - header.begin()));
    try {
      values.push_back(std::stof(cell));
    } catch (const std::exception&) {
      throw std::runtime_error(path + " line 2, feature column '" + name + "' holds '" + cell + "': expected a number");
    }
  }
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: edgemtl_infer MODEL.onnx IMAGE (or TABLE.csv for a vector model)\n";
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
    const Value input_json = json_prop(metadata, allocator, "edgemtl.input", "{}");
    const Value tasks = json_prop(metadata, allocator, "edgemtl.tasks", "[]");
    const Value output_map = json_prop(metadata, allocator, "edgemtl.outputs", "{}");
    const std::string policy = resize_policy(input_json);
    std::cout << "edgemtl.resize: " << policy << "\n";

    auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    auto input_name = session.GetInputNameAllocated(0, allocator);
    std::vector<Ort::AllocatedStringPtr> owned_names;
    std::vector<const char*> output_names;
    for (size_t i = 0; i < session.GetOutputCount(); ++i) {
      owned_names.push_back(session.GetOutputNameAllocated(i, allocator));
      output_names.push_back(owned_names.back().get());
    }
    const char* input_names[] = {input_name.get()};
    const std::vector<int64_t> shape = session.GetInputTypeInfo(0).GetTensorTypeAndShapeInfo().GetShape();

    // A vector model: [batch, features] float32 raw values, named in edgemtl.input.
    if (shape.size() == 2) {
      const auto names = feature_names(input_json);
      if (names.empty() || static_cast<int64_t>(names.size()) != shape[1]) {
        std::cerr << "error: " << argv[1] << " names " << names.size() << " features for a graph of " << shape[1]
                  << "\n";
        return 1;
      }
      const int64_t batch = shape[0] > 0 ? shape[0] : 1;
      const std::vector<float> row = first_row(argv[2], names);
      std::vector<float> rows;
      for (int64_t b = 0; b < batch; ++b) rows.insert(rows.end(), row.begin(), row.end());  // a fixed batch repeats it
      const std::array<int64_t, 2> rows_shape{batch, shape[1]};
      Ort::Value input =
          Ort::Value::CreateTensor<float>(memory, rows.data(), rows.size(), rows_shape.data(), rows_shape.size());
      auto outputs = session.Run(Ort::RunOptions{nullptr}, input_names, &input, 1, output_names.data(),
                                 output_names.size());
      std::cout << std::fixed << std::setprecision(6);
      print_results(tasks, output_map, output_names, outputs, cv::Size(1, 1), cv::Size(1, 1), Fit{});
      return 0;
    }

    // Input: [batch, height, width, 3] uint8 BGR; a dynamic axis shows as -1. A file exported with
    // --frame-size dynamic takes the image as it is (it resizes inside); otherwise it is resized to the input.
    cv::Mat image = cv::imread(argv[2], cv::IMREAD_COLOR);
    if (image.empty()) {
      std::cerr << "error: cannot read image " << argv[2] << "\n";
      return 1;
    }
    const int64_t batch = shape[0] > 0 ? shape[0] : 1;
    const int64_t height = shape[1] > 0 ? shape[1] : image.rows, width = shape[2] > 0 ? shape[2] : image.cols;
    const cv::Size input_size(static_cast<int>(width), static_cast<int>(height));
    const Fit where = fit(image.size(), input_size, policy);
    const cv::Mat resized = prepare(image, input_size, where).clone();  // continuous, whatever prepare returned
    std::vector<uint8_t> frames(static_cast<size_t>(batch) * resized.total() * 3);
    for (int64_t b = 0; b < batch; ++b)  // a fixed-batch export gets the frame repeated
      std::copy(resized.data, resized.data + resized.total() * 3, frames.begin() + b * resized.total() * 3);

    const std::array<int64_t, 4> input_shape{batch, height, width, 3};
    Ort::Value input = Ort::Value::CreateTensor<uint8_t>(memory, frames.data(), frames.size(), input_shape.data(),
                                                         input_shape.size());
    auto outputs = session.Run(Ort::RunOptions{nullptr}, input_names, &input, 1, output_names.data(),
                               output_names.size());
    std::cout << std::fixed << std::setprecision(6);
    print_results(tasks, output_map, output_names, outputs, image.size(), input_size, where);
  } catch (const std::exception& error) {  // Ort::Exception, cv::Exception and allocation failures
    std::cerr << "error: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
