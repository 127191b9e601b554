// SPDX-License-Identifier: Apache-2.0
#include "comm/wire.hpp"

#include <cstdint>

namespace cairn::wire {

std::string encode(const Message& message) {
  std::string bytes;
  Message::to_msgpack(message, nlohmann::detail::output_adapter<char>(bytes));
  return bytes;
}

Message decode(const std::string& bytes) {
  Message message = Message::from_msgpack(bytes, /*strict=*/true, /*allow_exceptions=*/false);
  if (message.is_discarded())
    throw Error(ErrorCode::kInternal, "a message from another rank is malformed (" +
                                          std::to_string(bytes.size()) + " bytes)");
  return message;
}

Message from_error(const Error& error) {
  const ErrorContext& c = error.context();
  return Message{{"code", static_cast<int>(error.code())},
                 {"message", error.message()},
                 {"rank", c.rank},
                 {"checkpoint", c.checkpoint},
                 {"key", c.key},
                 {"box", c.box},
                 {"operation", c.operation},
                 {"failed_ranks", error.failed_ranks()},
                 // Only Error::from_remote() keeps a text verbatim: what() is then the message.
                 {"verbatim", error.message() == error.what()}};
}

Error to_error(const Message& message) {
  try {
    if (message.at("verbatim").get<bool>()) {
      const int failed = message.at("failed_ranks").get<int>();
      return Error::from_remote(
          static_cast<ErrorCode>(message.at("code").get<int>()),
          message.at("message").get<std::string>() +
              (failed > 1 ? " (" + std::to_string(failed) + " ranks failed; the lowest is shown)"
                          : ""));
    }
    ErrorContext c{.rank = message.at("rank").get<int>(),
                   .checkpoint = message.at("checkpoint").get<std::string>(),
                   .key = message.at("key").get<std::string>(),
                   .box = message.at("box").get<std::string>(),
                   .operation = message.at("operation").get<std::string>()};
    return Error(static_cast<ErrorCode>(message.at("code").get<int>()),
                 message.at("message").get<std::string>(), std::move(c),
                 message.at("failed_ranks").get<int>());
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kInternal,
                std::string("an error message from another rank is malformed: ") + e.what());
  }
}

Message bytes_field(const std::string& bytes) {
  return Message::binary(std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
}

std::string bytes_of(const Message& field) {
  if (!field.is_binary())
    throw Error(ErrorCode::kInternal, "a message field from another rank is not bytes");
  const auto& b = field.get_binary();
  return std::string(b.begin(), b.end());
}

void broadcast(const Comm& comm, Message& message, int root) {
  std::string bytes = comm.rank() == root ? encode(message) : std::string();
  comm.broadcast(bytes, root);
  if (comm.rank() != root) message = decode(bytes);
}

std::vector<Message> gather(const Comm& comm, const Message& message, int root) {
  std::vector<Message> out;
  for (const std::string& bytes : comm.gather(encode(message), root)) out.push_back(decode(bytes));
  return out;
}

std::vector<Message> gather_agreed(const Comm& comm, const Message& message, int root,
                                   const Error* local_failure) {
  std::vector<Message> out;
  for (const std::string& bytes : comm.gather_agreed(encode(message), root, local_failure))
    out.push_back(decode(bytes));
  return out;
}

std::vector<Message> allgather(const Comm& comm, const Message& message) {
  std::vector<Message> out;
  for (const std::string& bytes : comm.allgather(encode(message))) out.push_back(decode(bytes));
  return out;
}

}  // namespace cairn::wire
