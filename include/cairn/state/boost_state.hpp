// SPDX-License-Identifier: Apache-2.0
#pragma once
// State<T>: any default-constructible T with a Boost.Serialization `serialize()` member (or free
// function) becomes checkpointable opaque state. This is the one public header that includes Boost:
// it is a template over the user's type, so the archive code must be instantiated in user code.
#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/iostreams/device/array.hpp>
#include <boost/iostreams/stream.hpp>
#include <boost/serialization/string.hpp>  // the common cases work without extra includes
#include <boost/serialization/vector.hpp>
#include <sstream>
#include <string>
#include <utility>

#include "cairn/core/error.hpp"
#include "cairn/state/state.hpp"

namespace cairn {

template <class T>
class State : public StateObject {
 public:
  explicit State(StateScope scope = StateScope::kPerRank, T value = T{})
      : StateObject(scope), value_(std::move(value)) {}

  T& value() noexcept { return value_; }
  const T& value() const noexcept { return value_; }

  std::string save_bytes() const override {
    std::ostringstream out(std::ios::binary);
    {
      boost::archive::binary_oarchive archive(out, boost::archive::no_header);
      archive << value_;
    }
    return std::move(out).str();
  }

  void load_bytes(std::string_view bytes) override {
    T fresh{};
    try {
      boost::iostreams::stream<boost::iostreams::array_source> in(bytes.data(), bytes.size());
      boost::archive::binary_iarchive archive(in, boost::archive::no_header);
      archive >> fresh;
    } catch (const std::exception& e) {
      throw Error(ErrorCode::kSerialization,
                  std::string("cannot deserialize opaque state: ") + e.what());
    }
    value_ = std::move(fresh);
  }

 private:
  T value_;
};

}  // namespace cairn
