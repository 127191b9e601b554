// SPDX-License-Identifier: Apache-2.0
#include "hostile_support.hpp"

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "damage.hpp"
#include "storage/checksum.hpp"
#include "storage/container_reader.hpp"
#include "storage/h5_handle.hpp"
#include "support/test_support.hpp"

namespace cairn::hostile {
namespace {

using nlohmann::json;

// A hostile file must not make a reader allocate what it declares: 1 GiB of peak RSS for the whole
// test process. AddressSanitizer's redzones and quarantine of freed memory multiply what the same
// work holds (the 10,000-level chain peaked at 1.05 GiB under ASan), so its builds get 3 GiB.
#if defined(__SANITIZE_ADDRESS__)
constexpr int64_t kMaxRssKiB = int64_t{3} << 20;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr int64_t kMaxRssKiB = int64_t{3} << 20;
#else
constexpr int64_t kMaxRssKiB = int64_t{1} << 20;
#endif
#else
constexpr int64_t kMaxRssKiB = int64_t{1} << 20;
#endif

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("hostile: " + what);
}

h5::File open_rw(const std::string& path) {
  h5::File file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
  if (!file.valid()) fail("cannot open " + path);
  return file;
}

std::string read_manifest_text(hid_t file) {
  h5::Dataset ds(H5Dopen2(file, "/cairn/manifest", H5P_DEFAULT));
  if (!ds.valid()) fail("no manifest");
  h5::Dataspace space(H5Dget_space(ds.get()));
  std::string text(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space.get())), '\0');
  if (H5Dread(ds.get(), H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data()) < 0)
    fail("cannot read the manifest");
  return text;
}

void put_commit_mark(hid_t file, const std::string& value) {
  if (H5Aexists(file, "cairn_commit") > 0 && H5Adelete(file, "cairn_commit") < 0)
    fail("cannot delete the commit mark");
  h5::Datatype type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), std::max<std::size_t>(value.size(), 1));
  h5::Dataspace space(H5Screate(H5S_SCALAR));
  h5::Attribute attr(
      H5Acreate2(file, "cairn_commit", type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid() || H5Awrite(attr.get(), type.get(), value.data()) < 0)
    fail("cannot write the commit mark");
}

int64_t peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

}  // namespace

Session& session() {
  static Session s(MPI_COMM_WORLD, {.pack_threshold_bytes = 256, .piece_bytes = 64});
  return s;
}

Checkpoint Model::checkpoint() {
  return Checkpoint(session(), {{"model", root}, {"loader", loader}, {"rng", rng}});
}

int64_t Model::touched() const {
  int64_t n = 0;
  for (const Variable* v : {w.get(), b.get()})
    for (std::byte x : v->bytes()) n += x != std::byte{0};
  return n + !loader->value().empty() + !rng->value().empty();
}

Model blank_model() {
  Model m;
  m.w = Variable::create<float>(session(), {16, 8}, Layout::block(0));
  m.b = Variable::create<float>(session(), {8}, Layout::replicated());
  m.root->track("w", m.w);
  m.root->track("b", m.b);
  m.loader = std::make_shared<State<std::vector<int64_t>>>(StateScope::kPerRank);
  m.rng = std::make_shared<State<std::string>>(StateScope::kGlobal);
  testing::zero(*m.w);
  testing::zero(*m.b);
  return m;
}

Model save_reference(const std::string& path) {
  Model m = blank_model();
  testing::fill(*m.w, 1);
  testing::fill(*m.b, 2);
  const int rank = session().rank();
  m.loader->value() = {rank + 1, rank * 3 + 1, 42};
  m.rng->value() = "mt19937 state 5489";
  m.checkpoint().write(path);
  return m;
}

json read_manifest(const std::string& path) {
  h5::File file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file.valid()) fail("cannot open " + path);
  return json::parse(read_manifest_text(file.get()));
}

void write_manifest_text(const std::string& path, const std::string& text) {
  h5::File file = open_rw(path);
  // A new dataset of the new size; the old one's space is left unused.
  if (H5Ldelete(file.get(), "/cairn/manifest", H5P_DEFAULT) < 0) fail("cannot unlink the manifest");
  const hsize_t n = text.size();
  h5::Dataspace space(H5Screate_simple(1, &n, nullptr));
  h5::Dataset ds(H5Dcreate2(file.get(), "/cairn/manifest", H5T_STD_U8LE, space.get(), H5P_DEFAULT,
                            H5P_DEFAULT, H5P_DEFAULT));
  if (!ds.valid() || (n > 0 && H5Dwrite(ds.get(), H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                        text.data()) < 0))
    fail("cannot write the manifest");
  const json mark{{"committed_unix", 1795628571},
                  {"manifest_bytes", text.size()},
                  {"manifest_xxh3", checksum_to_hex(checksum_bytes(text.data(), text.size()))}};
  put_commit_mark(file.get(), mark.dump());
}

Metadata read_metadata(const std::string& path) {
  Metadata m;
  m.header = decode_header(testing::read_byte_dataset(path, "/cairn/manifest"), path);
  if (m.header.format_major != kFormatMajor) fail(path + " is not of format 2.x");
  m.table = decode_table(testing::read_byte_dataset(path, "/cairn/table"), m.header, path);
  const std::string records = testing::read_byte_dataset(path, "/cairn/records");
  const std::vector<int64_t> offsets = testing::read_record_offsets(path);
  for (int r = 0; r < m.header.world_size; ++r) {
    const auto begin = static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]);
    const auto end = static_cast<std::size_t>(offsets[static_cast<std::size_t>(r) + 1]);
    m.records.push_back(decode_record(std::string_view(records).substr(begin, end - begin), r,
                                      m.table, m.header, path));
  }
  return m;
}

void write_records(const std::string& path, const std::vector<std::string>& records) {
  std::string all;
  std::vector<int64_t> offsets{0};
  for (const std::string& r : records) {
    all += r;
    offsets.push_back(static_cast<int64_t>(all.size()));
  }
  testing::write_byte_dataset(path, "/cairn/records", all);
  testing::write_record_offsets(path, offsets);
}

void write_metadata(const std::string& path, const Metadata& m) {
  testing::write_byte_dataset(path, "/cairn/manifest", encode_header(m.header));
  testing::write_byte_dataset(path, "/cairn/table", encode_table(m.table));
  std::vector<std::string> records;
  for (const RankRecord& r : m.records) records.push_back(encode_record(r));
  write_records(path, records);
}

void rewrite_metadata(const std::string& from, const std::string& to,
                      const std::function<void(Metadata&)>& mutate) {
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
  Metadata m = read_metadata(to);
  mutate(m);
  write_metadata(to, m);
}

void convert_to_format_1_1(const std::string& path) {
  Manifest manifest;
  {
    detail::ContainerReader reader(nullptr, path);
    manifest = reader.take_manifest();
    reader.close();
  }
  manifest.format_major = kLegacyMajor;
  manifest.format_minor = kLegacyMinor;
  h5::File file = open_rw(path);
  for (const char* name : {"/cairn/table", "/cairn/records", "/cairn/record_offsets"})
    if (H5Ldelete(file.get(), name, H5P_DEFAULT) < 0) fail(std::string("cannot unlink ") + name);
  file.reset();
  write_manifest_text(path, encode_manifest(manifest));
}

void replace_with_unwritten_dataset(const std::string& path, const std::string& name,
                                    int64_t bytes) {
  h5::File file = open_rw(path);
  if (H5Ldelete(file.get(), name.c_str(), H5P_DEFAULT) < 0) fail("cannot unlink " + name);
  const auto n = static_cast<hsize_t>(bytes);
  h5::Dataspace space(H5Screate_simple(1, &n, nullptr));
  h5::PropList dcpl(H5Pcreate(H5P_DATASET_CREATE));
  H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS);
  H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_LATE);
  h5::Dataset ds(H5Dcreate2(file.get(), name.c_str(), H5T_STD_U8LE, space.get(), H5P_DEFAULT,
                            dcpl.get(), H5P_DEFAULT));
  if (!ds.valid()) fail("cannot create " + name);
}

void write_commit_mark(const std::string& path, const std::string& text) {
  h5::File file = open_rw(path);
  put_commit_mark(file.get(), text);
}

void rewrite_manifest(const std::string& from, const std::string& to,
                      const std::function<void(json&)>& mutate) {
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
  json manifest = read_manifest(to);
  mutate(manifest);
  write_manifest_text(to, manifest.dump());
}

std::string read_file_bytes(const std::string& path, int64_t offset, int64_t bytes) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(offset);
  std::string out(static_cast<std::size_t>(bytes), '\0');
  in.read(out.data(), bytes);
  if (!in) fail("cannot read " + std::to_string(bytes) + " bytes of " + path);
  return out;
}

void write_file_bytes(const std::string& path, int64_t offset, const std::string& bytes) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(offset);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) fail("cannot write " + path);
}

std::string case_path(const std::string& dir, const std::string& name) {
  return dir + "/" + name + ".h5";
}

Outcome expect_clear_error(const std::string& name, const std::function<void()>& fn,
                           const std::vector<ErrorCode>& codes,
                           const std::vector<std::string>& needles, const Model* model,
                           double max_seconds) {
  const Comm& comm = session().comm();
  Outcome out;
  std::string other;  // any exception that is not cairn::Error is a failure in itself
  const auto start = std::chrono::steady_clock::now();
  try {
    fn();
  } catch (const Error& e) {
    out.threw = true;
    out.code = e.code();
    out.text = e.what();
  } catch (const std::exception& e) {
    other = e.what();
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(other.empty()) << name << ": not a cairn::Error: " << other;
  EXPECT_TRUE(out.threw) << name << ": no error";
  if (out.threw) {
    EXPECT_NE(std::find(codes.begin(), codes.end(), out.code), codes.end())
        << name << ": code " << to_string(out.code) << ": " << out.text;
    for (const std::string& needle : needles)
      EXPECT_NE(out.text.find(needle), std::string::npos)
          << name << ": '" << out.text << "' lacks '" << needle << "'";
  }
  const std::string verdict = std::to_string(static_cast<int>(out.code)) + "|" + out.text;
  const std::vector<std::string> all = comm.allgather(verdict);
  for (std::size_t r = 0; r < all.size(); ++r)
    EXPECT_EQ(all[r], all[0]) << name << ": rank " << r << " differs from rank 0";
  EXPECT_LT(comm.allreduce_max(static_cast<int64_t>(out.seconds * 1000)), max_seconds * 1000)
      << name;
  EXPECT_LT(comm.allreduce_max(peak_rss_kib()), kMaxRssKiB) << name << ": peak RSS";
  if (model) out.changed = comm.allreduce_sum(model->touched());
  if (comm.rank() == 0) {
    std::string excerpt = out.text.substr(0, 400);
    for (char& c : excerpt)
      if (c == '\n' || c == '|') c = ' ';
    std::printf("HOSTILE|%s|np%d|%s|%.2fs|%s|%s\n", name.c_str(), comm.size(),
                out.threw ? to_string(out.code) : "no error", out.seconds,
                model ? (out.changed ? std::to_string(out.changed) + " live values changed"
                                     : "nothing changed")
                            .c_str()
                      : "-",
                excerpt.c_str());
    std::fflush(stdout);
  }
  return out;
}

}  // namespace cairn::hostile
