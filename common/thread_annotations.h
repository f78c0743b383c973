#pragma once
// Clang's thread-safety analysis (-Wthread-safety): which lock guards which member,
// and which functions must (REQUIRES) or must not (EXCLUDES) be called with it held.
// Checked by the clang build of hack/thread-safety.sh in `make test`; with GCC the
// attributes are empty and Mutex/MutexLock are std::mutex/std::unique_lock.
//
// std::mutex carries no capability attributes in libstdc++, so the classes that own
// a lock use these thin wrappers. A condition variable waits on MutexLock::native();
// the analysis treats the lock as held across the wait, which is what the caller
// sees. A wait predicate that reads guarded members is a lambda marked
// REQUIRES(mu_): it runs with the lock held, inside wait().

#include <mutex>
#include <shared_mutex>

#if defined(__clang__)
#define CRONLANE_TSA(x) __attribute__((x))
#else
#define CRONLANE_TSA(x)
#endif

#define CAPABILITY(x) CRONLANE_TSA(capability(x))
#define SCOPED_CAPABILITY CRONLANE_TSA(scoped_lockable)
#define GUARDED_BY(x) CRONLANE_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) CRONLANE_TSA(pt_guarded_by(x))
#define REQUIRES(...) CRONLANE_TSA(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) CRONLANE_TSA(requires_shared_capability(__VA_ARGS__))
#define ACQUIRE(...) CRONLANE_TSA(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) CRONLANE_TSA(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) CRONLANE_TSA(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) CRONLANE_TSA(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) CRONLANE_TSA(release_generic_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) CRONLANE_TSA(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) CRONLANE_TSA(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) CRONLANE_TSA(assert_capability(x))
#define RETURN_CAPABILITY(x) CRONLANE_TSA(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS CRONLANE_TSA(no_thread_safety_analysis)

namespace cronlane {

// std::mutex with a capability.
class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // The std::mutex itself, for MutexLock (not for locking by hand).
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

// std::unique_lock<std::mutex> over a Mutex: held from construction to destruction,
// except between Unlock() and Lock().
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : lock_(mu.native()) {}
  ~MutexLock() RELEASE() = default;
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() RELEASE() { lock_.unlock(); }
  void Lock() ACQUIRE() { lock_.lock(); }
  // For std::condition_variable::wait*: it unlocks and relocks inside the call.
  std::unique_lock<std::mutex>& native() { return lock_; }

 private:
  std::unique_lock<std::mutex> lock_;
};

// std::shared_mutex with a capability: many readers or one writer.
class CAPABILITY("shared mutex") SharedMutex {
 public:
  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  void lock_shared() ACQUIRE_SHARED() { mu_.lock_shared(); }
  void unlock_shared() RELEASE_SHARED() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

class SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~WriterLock() RELEASE() { mu_.unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex& mu_;
};

class SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex& mu) ACQUIRE_SHARED(mu) : mu_(mu) { mu_.lock_shared(); }
  ~ReaderLock() RELEASE() { mu_.unlock_shared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  SharedMutex& mu_;
};

}  // namespace cronlane
