// A slow disk for tests and the load tool: LD_PRELOAD this into a process and every
// fsync, fdatasync and sync_file_range it makes sleeps SLOW_FSYNC_MS milliseconds (default
// 400) before doing the real call, as on an overloaded network disk. sled makes its log
// durable with sync_file_range, std's File::sync_all is fsync; both are covered.
//
//   cc -shared -fPIC -O2 -o slow-fsync.so tools/slow-fsync.c -ldl
//   LD_PRELOAD=$PWD/slow-fsync.so SLOW_FSYNC_MS=400 target/release/loopchat
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void slow_down(void) {
  const char *setting = getenv("SLOW_FSYNC_MS");
  long ms = setting ? atol(setting) : 400;
  struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&pause, &pause) != 0) {
  }
}

int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  slow_down();
  return real(fd);
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  slow_down();
  return real(fd);
}

int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags) {
  static int (*real)(int, off_t, off_t, unsigned int);
  if (!real) real = (int (*)(int, off_t, off_t, unsigned int))dlsym(RTLD_NEXT, "sync_file_range");
  slow_down();
  return real(fd, offset, nbytes, flags);
}
