#include "tests/support/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>

namespace cronlane::testing {
namespace {

// One proxied connection: bytes read from one side wait in a buffer until the other
// side takes them.
struct Pair {
  int client = -1;
  int server = -1;
  std::string to_server, to_client;
  bool client_eof = false, server_eof = false;
};

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

int Connect(const std::string& host, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

// Moves what `from` has to `buf` (false on EOF or error).
bool ReadInto(int from, std::string& buf) {
  char chunk[16384];
  ssize_t n = ::read(from, chunk, sizeof chunk);
  if (n > 0) {
    buf.append(chunk, static_cast<size_t>(n));
    return true;
  }
  return n < 0 && (errno == EAGAIN || errno == EINTR);
}

// Writes what it can of `buf` to `to` (false on error).
bool WriteFrom(int to, std::string& buf) {
  if (buf.empty()) return true;
  ssize_t n = ::send(to, buf.data(), buf.size(), MSG_NOSIGNAL);
  if (n > 0) {
    buf.erase(0, static_cast<size_t>(n));
    return true;
  }
  return n < 0 && (errno == EAGAIN || errno == EINTR);
}

}  // namespace

TcpProxy::TcpProxy(std::string target_host, int target_port)
    : target_host_(std::move(target_host)), target_port_(target_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 128) != 0) {
    throw std::runtime_error("TcpProxy: cannot listen on 127.0.0.1");
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("TcpProxy: pipe");
  thread_ = std::thread([this] { Loop(); });
}

TcpProxy::~TcpProxy() {
  stop_ = true;
  (void)!::write(wake_[1], "x", 1);
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void TcpProxy::Loop() {
  std::vector<Pair> pairs;
  while (!stop_) {
    const bool cut = partitioned_;
    std::vector<pollfd> fds;
    fds.push_back({wake_[0], POLLIN, 0});
    if (!cut) fds.push_back({listen_fd_, POLLIN, 0});
    if (!cut) {
      for (const Pair& p : pairs) {
        fds.push_back(
            {p.client, static_cast<short>((p.client_eof ? 0 : POLLIN) | (p.to_client.empty() ? 0 : POLLOUT)), 0});
        fds.push_back(
            {p.server, static_cast<short>((p.server_eof ? 0 : POLLIN) | (p.to_server.empty() ? 0 : POLLOUT)), 0});
      }
    }
    // While cut, wake up now and then to see whether the cut healed.
    ::poll(fds.data(), fds.size(), cut ? 50 : 200);
    if (stop_) break;
    if (cut || partitioned_) continue;
    if (fds[1].revents & POLLIN) {
      int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c >= 0) {
        int s = Connect(target_host_, target_port_);
        if (s < 0) {
          ::close(c);
        } else {
          pairs.push_back({c, s, {}, {}, false, false});
          ++accepted_;
        }
      }
    }
    for (size_t i = 0; i < pairs.size() && 2 + 2 * i + 1 < fds.size(); ++i) {
      Pair& p = pairs[i];
      const short cr = fds[2 + 2 * i].revents, sr = fds[2 + 2 * i + 1].revents;
      bool ok = true;
      if (cr & (POLLIN | POLLHUP | POLLERR)) {
        if (!ReadInto(p.client, p.to_server)) p.client_eof = true;
      }
      if (sr & (POLLIN | POLLHUP | POLLERR)) {
        if (!ReadInto(p.server, p.to_client)) p.server_eof = true;
      }
      ok = WriteFrom(p.server, p.to_server) && WriteFrom(p.client, p.to_client);
      // A side that ended, once what it sent was delivered, ends the other side.
      if (!ok || (p.client_eof && p.to_server.empty()) || (p.server_eof && p.to_client.empty())) {
        CloseFd(p.client);
        CloseFd(p.server);
      }
    }
    std::erase_if(pairs, [](const Pair& p) { return p.client < 0; });
  }
  for (Pair& p : pairs) {
    CloseFd(p.client);
    CloseFd(p.server);
  }
}

}  // namespace cronlane::testing
