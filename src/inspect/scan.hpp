// SPDX-License-Identifier: Apache-2.0
#pragma once
// Finding the checkpoint-like files of a directory.
#include <string>
#include <vector>

namespace cairn::inspect::detail {

/// Whether `name` is a temporary file of a save in progress or interrupted: "<final>.tmp-<id>".
bool is_temporary_name(const std::string& name);
/// Local. Names of the regular files of `directory` that end in ".h5" or are temporary files of
/// one ("*.h5.tmp-*"), in natural order ("ckpt-2.h5" before "ckpt-10.h5"). Throws kNotFound if
/// the directory does not exist, kIo if it cannot be read.
std::vector<std::string> checkpoint_like_files(const std::string& directory);
/// "a-2" < "a-10": digit runs compare as numbers.
bool natural_less(const std::string& a, const std::string& b);

}  // namespace cairn::inspect::detail
