// Compiled only into the thread-sanitizer build (the tsan preset; common/CMakeLists.txt).
// librdkafka starts its threads with C11 thrd_create, which the TSan runtime of
// GCC 12 (and clang 14) does not intercept: those threads run without TSan state and
// crash at their first allocation. An executable's definitions come before glibc's for
// every library in the process, so these start and join the thread through
// pthread_create/pthread_join, which TSan intercepts. The preset's linker flags
// (-Wl,--undefined=thrd_create) pull this object out of the archive into each binary.
#include <pthread.h>
#include <threads.h>

#include <cerrno>
#include <cstdint>
#include <new>

namespace {

struct Start {
  thrd_start_t fn;
  void* arg;
};

void* RunC11Thread(void* p) {
  Start start = *static_cast<Start*>(p);
  delete static_cast<Start*>(p);
  // A C11 thread returns an int, a POSIX one a pointer: the int travels in it.
  return reinterpret_cast<void*>(static_cast<std::intptr_t>(start.fn(start.arg)));  // NOLINT(performance-no-int-to-ptr)
}

}  // namespace

extern "C" int thrd_create(thrd_t* thr, thrd_start_t fn, void* arg) {
  auto* start = new (std::nothrow) Start{fn, arg};
  if (start == nullptr) return thrd_nomem;
  int rc = pthread_create(thr, nullptr, RunC11Thread, start);
  if (rc != 0) {
    delete start;
    return rc == EAGAIN ? thrd_nomem : thrd_error;
  }
  return thrd_success;
}

extern "C" int thrd_join(thrd_t thr, int* res) {
  void* result = nullptr;
  if (pthread_join(thr, &result) != 0) return thrd_error;
  if (res != nullptr) *res = static_cast<int>(reinterpret_cast<std::intptr_t>(result));
  return thrd_success;
}
