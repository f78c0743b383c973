// Compiled only into the thread-sanitizer build (the tsan preset; common/CMakeLists.txt).
// librdkafka starts its threads with C11 thrd_create, which the TSan runtime of
// GCC 12 (and clang 14) does not intercept: those threads run without TSan state and
// crash at their first allocation. An executable's definitions come before glibc's for
// every library in the process, so these start and join the thread through
// pthread_create/pthread_join, which TSan intercepts. The preset's linker flags
// (-Wl,--undefined=thrd_create) pull this object out of the archive into each binary.
//
// The same holds for librdkafka's C11 mutexes, condition variables and call_once:
// glibc's mtx_lock and cnd_wait reach pthreads through internal aliases that TSan
// does not intercept, so librdkafka's hand-overs between its threads and ours were
// invisible, and memory handed over through them (a record our pool thread gave
// librdkafka to produce, freed by our delivery thread once its delivery report came)
// was reported as a race. These pass the same objects to the pthread functions, as
// glibc does (its mtx_t and cnd_t are pthread_mutex_t and pthread_cond_t, resized),
// and map the results to C11's the way glibc does.
#include <pthread.h>
#include <threads.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <new>

static_assert(sizeof(mtx_t) >= sizeof(pthread_mutex_t) && sizeof(cnd_t) >= sizeof(pthread_cond_t) &&
              sizeof(once_flag) >= sizeof(pthread_once_t));

namespace {

// glibc's thrd_err_map.
int C11(int rc) {
  switch (rc) {
    case 0:
      return thrd_success;
    case ENOMEM:
      return thrd_nomem;
    case ETIMEDOUT:
      return thrd_timedout;
    case EBUSY:
      return thrd_busy;
    default:
      return thrd_error;
  }
}

pthread_mutex_t* P(mtx_t* m) {
  return reinterpret_cast<pthread_mutex_t*>(m);
}
pthread_cond_t* P(cnd_t* c) {
  return reinterpret_cast<pthread_cond_t*>(c);
}

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

extern "C" int mtx_init(mtx_t* m, int type) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  switch (type) {
    case mtx_plain:
    case mtx_timed:
      break;
    case mtx_plain | mtx_recursive:
    case mtx_timed | mtx_recursive:
      pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
      break;
    default:
      pthread_mutexattr_destroy(&attr);
      return thrd_error;
  }
  int rc = pthread_mutex_init(P(m), &attr);
  pthread_mutexattr_destroy(&attr);
  return C11(rc);
}
extern "C" int mtx_lock(mtx_t* m) {
  return C11(pthread_mutex_lock(P(m)));
}
extern "C" int mtx_trylock(mtx_t* m) {
  return C11(pthread_mutex_trylock(P(m)));
}
extern "C" int mtx_timedlock(mtx_t* __restrict m, const struct timespec* __restrict t) {
  return C11(pthread_mutex_timedlock(P(m), t));
}
extern "C" int mtx_unlock(mtx_t* m) {
  return C11(pthread_mutex_unlock(P(m)));
}
extern "C" void mtx_destroy(mtx_t* m) {
  pthread_mutex_destroy(P(m));
}

extern "C" int cnd_init(cnd_t* c) {
  return C11(pthread_cond_init(P(c), nullptr));
}
extern "C" int cnd_signal(cnd_t* c) {
  return C11(pthread_cond_signal(P(c)));
}
extern "C" int cnd_broadcast(cnd_t* c) {
  return C11(pthread_cond_broadcast(P(c)));
}
extern "C" int cnd_wait(cnd_t* c, mtx_t* m) {
  return C11(pthread_cond_wait(P(c), P(m)));
}
extern "C" int cnd_timedwait(cnd_t* __restrict c, mtx_t* __restrict m, const struct timespec* __restrict t) {
  return C11(pthread_cond_timedwait(P(c), P(m), t));
}
extern "C" void cnd_destroy(cnd_t* c) {
  pthread_cond_destroy(P(c));
}

extern "C" void call_once(once_flag* flag, void (*fn)()) {
  pthread_once(reinterpret_cast<pthread_once_t*>(flag), fn);
}
