// json.hpp: the little JSON reader edgemtl_infer needs for the file's metadata_props (edgemtl.tasks,
// edgemtl.outputs, edgemtl.input are JSON texts), so the recipe needs no JSON library.
//
// Objects, arrays, strings (every escape, \uXXXX written out as UTF-8), numbers, true, false, null. A file is
// untrusted: nesting is bounded and anything malformed throws std::runtime_error naming what and where.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace edgemtl_json {

struct Value {
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  double number = 0;
  std::string text;               // a string's characters
  std::vector<Value> items;       // an array's values, or an object's values in file order
  std::vector<std::string> keys;  // an object's keys, parallel to items

  bool is(Type t) const { return type == t; }

  // The member under `key`, or nullptr (also when this is not an object).
  const Value* find(const std::string& key) const {
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == key) return &items[i];
    return nullptr;
  }

  // The member under `key`, which must be there.
  const Value& at(const std::string& key) const {
    const Value* member = find(key);
    if (!member) throw std::runtime_error("metadata JSON has no '" + key + "'");
    return *member;
  }

  // A string member, or `fallback` when it is absent or not a string.
  std::string string_or(const std::string& key, const std::string& fallback) const {
    const Value* member = find(key);
    return member && member->is(Type::String) ? member->text : fallback;
  }
};

class Parser {
 public:
  explicit Parser(const std::string& source) : s_(source) {}

  Value document() {
    Value value = parse(0);
    skip_space();
    if (at_ < s_.size()) fail("text after the value");
    return value;
  }

 private:
  static constexpr int kMaxDepth = 64;
  const std::string& s_;
  size_t at_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("metadata JSON: " + what + " at character " + std::to_string(at_));
  }

  void skip_space() {
    while (at_ < s_.size() && (s_[at_] == ' ' || s_[at_] == '\t' || s_[at_] == '\n' || s_[at_] == '\r')) ++at_;
  }

  char next() {
    if (at_ >= s_.size()) fail("unexpected end");
    return s_[at_++];
  }

  void expect(const char* word) {
    for (const char* c = word; *c; ++c)
      if (next() != *c) fail(std::string("expected '") + word + "'");
  }

  Value parse(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 64");
    skip_space();
    Value value;
    const char c = at_ < s_.size() ? s_[at_] : '\0';
    if (c == '{' || c == '[') {
      const bool object = c == '{';
      value.type = object ? Value::Type::Object : Value::Type::Array;
      ++at_;
      skip_space();
      if (at_ < s_.size() && s_[at_] == (object ? '}' : ']')) return ++at_, value;
      while (true) {
        if (object) {
          skip_space();
          if (next() != '"') fail("expected a key");
          value.keys.push_back(string_body());
          skip_space();
          if (next() != ':') fail("expected ':'");
        }
        value.items.push_back(parse(depth + 1));
        skip_space();
        const char end = next();
        if (end == (object ? '}' : ']')) return value;
        if (end != ',') fail("expected ',' or the end of the list");
      }
    }
    if (c == '"') {
      ++at_;
      value.type = Value::Type::String;
      value.text = string_body();
    } else if (c == 't' || c == 'f') {
      value.type = Value::Type::Bool;
      value.boolean = c == 't';
      expect(value.boolean ? "true" : "false");
    } else if (c == 'n') {
      expect("null");
    } else {
      const char* start = s_.c_str() + at_;
      char* end = nullptr;
      value.type = Value::Type::Number;
      value.number = std::strtod(start, &end);
      if (end == start) fail("expected a value");
      at_ += static_cast<size_t>(end - start);
    }
    return value;
  }

  unsigned hex4() {
    unsigned code = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = next();
      code <<= 4;
      if (h >= '0' && h <= '9') code |= unsigned(h - '0');
      else if (h >= 'a' && h <= 'f') code |= unsigned(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') code |= unsigned(h - 'A' + 10);
      else fail("bad \\u escape");
    }
    return code;
  }

  static void append_utf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out += char(code);
    } else if (code < 0x800) {
      out += char(0xC0 | (code >> 6));
      out += char(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += char(0xE0 | (code >> 12));
      out += char(0x80 | ((code >> 6) & 0x3F));
      out += char(0x80 | (code & 0x3F));
    } else {
      out += char(0xF0 | (code >> 18));
      out += char(0x80 | ((code >> 12) & 0x3F));
      out += char(0x80 | ((code >> 6) & 0x3F));
      out += char(0x80 | (code & 0x3F));
    }
  }

  // The characters after an opening quote, up to and past the closing one.
  std::string string_body() {
    std::string out;
    for (char c = next(); c != '"'; c = next()) {
      if (c != '\\') {
        out += c;
        continue;
      }
      switch (const char e = next()) {
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned code = hex4();
          if (code >= 0xD800 && code < 0xDC00) {  // a surrogate pair: Python's json.dumps writes one per emoji
            expect("\\u");
            const unsigned low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail("a high surrogate without its low half");
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, code);
          break;
        }
        default: out += e;  // \" \\ \/
      }
    }
    return out;
  }
};

inline Value parse(const std::string& text) { return Parser(text).document(); }

}  // namespace edgemtl_json
