#pragma once
// A TCP proxy on 127.0.0.1 in front of a real server, so a test can cut one client
// off from that server while everything else still reaches it (the apiserver
// unreachable from one replica only). Bytes are forwarded unchanged (TLS passes
// through; the server's certificate names 127.0.0.1).
//
// Partition() behaves like a network that drops packets: open connections stall
// (nothing is forwarded either way), and new ones complete the TCP handshake in
// the kernel's backlog but are never answered, so clients see their requests hang
// until their own timeouts. Heal() forwards again, including what waited.
//
// Written here rather than taken from a tool: the cut has to be switched from the
// test's own thread, at an exact moment, for one client; a few dozen lines of poll()
// do that without another server to build and drive. One thread of its own; every
// public method is thread-safe.

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cronlane::testing {

class TcpProxy {
 public:
  // Forwards connections on a free 127.0.0.1 port to target_host:target_port.
  TcpProxy(std::string target_host, int target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  void Partition() { partitioned_ = true; }
  void Heal() { partitioned_ = false; }
  // Connections accepted so far (a test can check its client used the proxy).
  int accepted() const { return accepted_; }

 private:
  void Loop();

  std::string target_host_;
  int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  int wake_[2] = {-1, -1};  // a pipe: the destructor wakes Loop()
  std::atomic<bool> partitioned_{false};
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

}  // namespace cronlane::testing
