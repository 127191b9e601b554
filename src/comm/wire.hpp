// SPDX-License-Identifier: Apache-2.0
#pragma once
// The one wire format of every message cairn sends between ranks: a JSON value encoded as
// MessagePack (nlohmann-json's codec). Errors, status problem lists, directory states, paths,
// commit marks, a save's per-rank tables and the tools' exit codes travel this way, so a message
// is read by one decoder and a malformed one fails the same way everywhere. A checkpoint's manifest
// is not a message: ContainerReader relays the file's bytes unchanged with a plain broadcast
// (megabytes, which rank 0 has checked against the commit mark's checksum).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/comm/comm.hpp"
#include "cairn/core/error.hpp"

namespace cairn::wire {

using Message = nlohmann::json;

/// Local. The bytes of `message`.
std::string encode(const Message& message);
/// Local. The message in `bytes`; a malformed one is kInternal (ranks of one job never send one).
Message decode(const std::string& bytes);

/// Local. An error as a message: code, message, the context's fields and the failed-rank count.
Message from_error(const Error& error);
/// Local. The error a message from from_error() describes.
Error to_error(const Message& message);

/// Local. Bytes (a save's per-rank table, say) as a message field that carries any byte values.
Message bytes_field(const std::string& bytes);
std::string bytes_of(const Message& field);

/// Collective over `comm`. `message` of rank `root` reaches every rank.
void broadcast(const Comm& comm, Message& message, int root);
/// Collective over `comm`. Every rank's message, on `root` (empty elsewhere).
std::vector<Message> gather(const Comm& comm, const Message& message, int root);
/// Collective. gather() and comm.agree(local_failure) together (Comm::gather_agreed).
std::vector<Message> gather_agreed(const Comm& comm, const Message& message, int root,
                                   const Error* local_failure);
/// Collective over `comm`. Every rank's message, in rank order, on every rank.
std::vector<Message> allgather(const Comm& comm, const Message& message);

}  // namespace cairn::wire
