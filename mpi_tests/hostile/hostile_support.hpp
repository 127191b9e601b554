// SPDX-License-Identifier: Apache-2.0
#pragma once
// Helpers of the hostile-file tests: a small reference checkpoint written by the job (format 2.0,
// and a format 1.1 copy of it), hostile rewrites of its header, table, records, 1.x manifest and
// commit mark, and the check every hostile case must pass (a clear cairn::Error, the same text on
// every rank, in bounded time and memory).
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cairn/cairn.hpp"
#include "cairn/state/boost_state.hpp"
#include "storage/table.hpp"

namespace cairn::hostile {

/// The session of these tests: small pack and piece thresholds, so that a checkpoint of a few KB
/// has a tensor in its own dataset cut into several pieces, packed tensors, and opaque state.
Session& session();

struct Model {
  std::shared_ptr<Module> root = std::make_shared<Module>();
  std::shared_ptr<Variable> w;  // f32 [16, 8], block(0): its own dataset, 64-byte pieces
  std::shared_ptr<Variable> b;  // f32 [8], replicated: packed
  std::shared_ptr<State<std::vector<int64_t>>> loader;  // per-rank opaque state
  std::shared_ptr<State<std::string>> rng;              // global opaque state
  Checkpoint checkpoint();
  /// Local. Elements and state values of this rank that are no longer blank (see blank_model()).
  int64_t touched() const;
};

inline const std::string kWKey = "model/w/.ATTRIBUTES/VARIABLE_VALUE";
inline const std::string kLoaderKey = "loader/.ATTRIBUTES/STATE";

/// Collective. A model whose values are all zero (what a restore that changed nothing leaves).
Model blank_model();
/// Collective. Writes the reference checkpoint to `path` and returns the model that was saved.
Model save_reference(const std::string& path);

/// The metadata of a format 2.x file, decoded: what a hostile case mutates before it is encoded
/// again, with checksums that match, so that the damage reaches the decoder.
struct Metadata {
  Header header;
  GlobalTable table;
  std::vector<RankRecord> records;  // one per rank of the saving job
};
/// Local. Decodes the header, the table and every record of the 2.x file `path`.
Metadata read_metadata(const std::string& path);
/// Local. Encodes `m` into `path`: the header and the table with a commit mark that matches, and
/// the records (encode_record computes each body's checksum) with record offsets that match.
void write_metadata(const std::string& path, const Metadata& m);
/// Local. Replaces the records of `path` by `records`, verbatim, with offsets that match.
void write_records(const std::string& path, const std::vector<std::string>& records);
/// Local. Copies `from` to `to` and replaces the metadata of `to` with mutate(metadata).
void rewrite_metadata(const std::string& from, const std::string& to,
                      const std::function<void(Metadata&)>& mutate);
/// Local. Turns the 2.0 checkpoint `path` into the format 1.1 file cairn 0.1 wrote of the same
/// values: the whole manifest (as encode_manifest writes it) in /cairn/manifest, no table or
/// records, a commit mark without a table. The data stays where it is.
void convert_to_format_1_1(const std::string& path);

/// Local. Copies `from` (a 1.x file) to `to` and replaces the manifest of `to` with
/// mutate(manifest), and the commit mark with one that matches it (so the damage is past the
/// checksum).
void rewrite_manifest(const std::string& from, const std::string& to,
                      const std::function<void(nlohmann::json&)>& mutate);
/// Local. Replaces the manifest of `path` by `text`, verbatim, with a matching commit mark (of a
/// 1.x file: without a table).
void write_manifest_text(const std::string& path, const std::string& text);
/// Local. Replaces the commit mark of `path` by `text`.
void write_commit_mark(const std::string& path, const std::string& text);
/// Local. Replaces dataset `name` of `path` by a u8 dataset of `bytes` elements whose storage is
/// never allocated (contiguous, late allocation): it declares far more than the file holds.
void replace_with_unwritten_dataset(const std::string& path, const std::string& name,
                                    int64_t bytes);
/// Local. The manifest of the 1.x file `path`, parsed.
nlohmann::json read_manifest(const std::string& path);
/// Local. `bytes` bytes of the file at `offset`.
std::string read_file_bytes(const std::string& path, int64_t offset, int64_t bytes);
/// Local. Writes `bytes` into the file at `offset`.
void write_file_bytes(const std::string& path, int64_t offset, const std::string& bytes);

struct Outcome {
  bool threw = false;
  ErrorCode code{};
  std::string text;
  double seconds = 0;
  int64_t changed = 0;  // live values the failed call changed, summed over ranks
};

/// Collective. Runs `fn` on every rank, expecting a cairn::Error whose code is one of `codes` and
/// whose text holds every needle, identical on every rank (compared by allgather), within
/// `max_seconds` and with every rank's peak RSS below 1 GiB. `model` (may be null) is checked
/// for values the failed call changed. Prints one result line per case on rank 0 for
/// docs/reliability.md.
Outcome expect_clear_error(const std::string& name, const std::function<void()>& fn,
                           const std::vector<ErrorCode>& codes,
                           const std::vector<std::string>& needles, const Model* model = nullptr,
                           double max_seconds = 30);

/// Collective over MPI_COMM_WORLD. The same path on every rank, for a case file in `dir`.
std::string case_path(const std::string& dir, const std::string& name);

}  // namespace cairn::hostile
