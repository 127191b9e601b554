// SPDX-License-Identifier: Apache-2.0
// cairn export: a checkpoint's tensors as safetensors or plain HDF5, streamed chunk by chunk.
#include "cairn/inspect/export.hpp"

#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cairn/inspect/common.hpp"
#include "inspect/probe.hpp"
#include "inspect/summary.hpp"
#include "inspect/text.hpp"
#include "inspect/values.hpp"
#include "storage/hdf5_lock.hpp"
#include "storage/plain_h5_writer.hpp"
#include "tensor/dtype_traits.hpp"

namespace cairn::inspect {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

// safetensors stores raw little-endian bytes, which is what cairn reads into memory here.
static_assert(std::endian::native == std::endian::little, "export assumes a little-endian host");

enum class Format { kSafetensors, kH5 };

// The dtype's name in a safetensors header, from the dtype table.
std::string_view safetensors_dtype(DType dtype) {
  return cairn::detail::visit_dtype(dtype,
                                    [](auto row) { return decltype(row)::safetensors_name; });
}

bool selected(const std::string& key, const std::vector<std::string>& globs) {
  if (globs.empty()) return true;
  return std::any_of(globs.begin(), globs.end(),
                     [&](const std::string& g) { return fnmatch(g.c_str(), key.c_str(), 0) == 0; });
}

// The header: the tensors' dtypes, shapes and byte ranges, then metadata; padded with spaces so
// that the data starts 8-byte aligned.
std::string safetensors_header(const detail::Probe& p,
                               const std::vector<const TensorRecord*>& tensors) {
  ordered_json header;
  int64_t offset = 0;
  for (const TensorRecord* t : tensors) {
    const int64_t end = detail::add_bytes(offset, detail::tensor_bytes(*t), p.path, t->key);
    header[t->key] = {{"dtype", std::string(safetensors_dtype(t->dtype))},
                      {"shape", t->shape},
                      {"data_offsets", {offset, end}}};
    offset = end;
  }
  const Manifest& m = *p.manifest;
  header["__metadata__"] = {{"producer", "cairn export"},
                            {"cairn_checkpoint", fs::path(p.path).filename().string()},
                            {"cairn_format_version", detail::format_version(m)},
                            {"cairn_save_counter", std::to_string(m.save_counter)}};
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

void write_safetensors(detail::Probe& p, const std::vector<const TensorRecord*>& tensors,
                       const std::string& file, const std::string& output, int64_t chunk_bytes) {
  const ErrorContext ctx{.checkpoint = output, .operation = "write safetensors"};
  std::ofstream os(file, std::ios::binary | std::ios::trunc);
  if (!os) throw Error(ErrorCode::kIo, "cannot create the output file", ctx);
  const std::string header = safetensors_header(p, tensors);
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(header.size() >> (8 * i));
  os.write(reinterpret_cast<const char*>(length), 8);
  os.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const TensorRecord* t : tensors) {
    const auto esize = static_cast<int64_t>(dtype_size(t->dtype));
    detail::for_each_chunk(*p.reader, *t, Box::whole(t->shape), chunk_bytes,
                           [&](const Box& chunk, const std::byte* data) {
                             os.write(reinterpret_cast<const char*>(data),
                                      static_cast<std::streamsize>(chunk.volume() * esize));
                             return static_cast<bool>(os);
                           });
    if (!os)
      throw Error(ErrorCode::kIo, "cannot write the output file (disk full?)",
                  {.checkpoint = output, .key = t->key, .operation = "write safetensors"});
  }
  os.close();
  if (!os) throw Error(ErrorCode::kIo, "cannot close the output file", ctx);
}

void write_h5(detail::Probe& p, const std::vector<const TensorRecord*>& tensors,
              const std::string& file, int64_t chunk_bytes) {
  cairn::detail::PlainH5Writer writer(file);
  const Manifest& m = *p.manifest;
  writer.set_root_attribute("producer", "cairn export");
  writer.set_root_attribute("cairn_checkpoint", fs::path(p.path).filename().string());
  writer.set_root_attribute("cairn_format_version", detail::format_version(m));
  writer.set_root_attribute("cairn_save_counter", std::to_string(m.save_counter));
  for (const TensorRecord* t : tensors) {
    writer.begin_dataset(t->key, t->dtype, t->shape);
    detail::for_each_chunk(*p.reader, *t, Box::whole(t->shape), chunk_bytes,
                           [&](const Box& chunk, const std::byte* data) {
                             writer.write(chunk, data);
                             return true;
                           });
  }
  writer.close();
}

}  // namespace

int export_checkpoint(const ExportOptions& options, std::ostream& out) {
  const ErrorContext ctx{.checkpoint = options.output, .operation = "export"};
  Format format;
  if (options.output.ends_with(".safetensors"))
    format = Format::kSafetensors;
  else if (options.output.ends_with(".h5"))
    format = Format::kH5;
  else
    throw Error(ErrorCode::kInvalidArgument,
                "the output must end in .safetensors or .h5 (it names the format)", ctx);
  std::error_code ec;
  if (fs::exists(options.output, ec) && fs::equivalent(options.output, options.path, ec))
    throw Error(ErrorCode::kInvalidArgument, "the output is the checkpoint itself", ctx);

  // HDF5 is not thread-safe here: wait for any background save of this process.
  std::lock_guard<std::recursive_mutex> hdf5(cairn::detail::hdf5_mutex());
  detail::Probe p = detail::open_committed(options.path);
  std::vector<const TensorRecord*> tensors;
  for (const TensorRecord& t : p.manifest->tensors)
    if (selected(t.key, options.keys)) tensors.push_back(&t);
  std::sort(tensors.begin(), tensors.end(),
            [](const TensorRecord* a, const TensorRecord* b) { return a->key < b->key; });
  if (tensors.empty() && !options.keys.empty())
    throw Error(ErrorCode::kInvalidArgument, "no tensor key matches --keys (cairn ls lists them)",
                {.checkpoint = p.path});

  // Written under a temporary name in the output's directory, renamed when complete. Not
  // "*.tmp-*": in a checkpoint directory that would read as a save's temporary file, which a
  // manager's recovery deletes.
  const std::string temporary = options.output + ".part-" + std::to_string(::getpid());
  const int64_t chunk = std::max<int64_t>(options.chunk_bytes, 64);
  try {
    if (format == Format::kSafetensors)
      write_safetensors(p, tensors, temporary, options.output, chunk);
    else
      write_h5(p, tensors, temporary, chunk);
    fs::rename(temporary, options.output);
  } catch (...) {
    fs::remove(temporary, ec);
    throw;
  }
  int64_t bytes = 0;
  for (const TensorRecord* t : tensors)
    bytes = detail::add_bytes(bytes, detail::tensor_bytes(*t), p.path, t->key);
  const char* format_name = format == Format::kSafetensors ? "safetensors" : "hdf5";
  const auto states = static_cast<int64_t>(p.manifest->states.size());
  if (options.json) {
    ordered_json j;
    j["path"] = p.path;
    j["output"] = options.output;
    j["format"] = format_name;
    j["tensors"] = tensors.size();
    j["tensor_bytes"] = bytes;
    j["file_bytes"] = static_cast<int64_t>(fs::file_size(options.output, ec));
    j["states_not_exported"] = states;
    out << j.dump(2) << '\n';
  } else {
    out << "exported " << detail::plural(static_cast<int64_t>(tensors.size()), "tensor") << " ("
        << detail::human_bytes(bytes) << ") of " << p.path << " to " << options.output << " ("
        << format_name << ")";
    if (states > 0)
      out << "; " << detail::plural(states, "opaque state")
          << " not exported (cairn cat shows them)";
    out << '\n';
  }
  return kExitOk;
}

}  // namespace cairn::inspect
