// A disk whose syncs a test holds: LD_PRELOAD this into a process and every fsync,
// fdatasync and sync_file_range it makes waits, before doing the real call, for as long as
// the file named by FSYNC_GATE exists (checked every millisecond). Without FSYNC_GATE, or
// while that file does not exist, syncs go through at once. A test creates the file to
// hold everything the process is making durable, and removes it to let it all go on: a
// barrier it controls, where tools/slow-fsync.c only slows the disk down.
//
//   cc -shared -fPIC -O2 -o fsync-gate.so tools/fsync-gate.c -ldl
//   LD_PRELOAD=$PWD/fsync-gate.so FSYNC_GATE=/tmp/hold target/release/loopchat
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void wait_at_gate(void) {
  const char *gate = getenv("FSYNC_GATE");
  if (!gate || !*gate) return;
  while (access(gate, F_OK) == 0) {
    struct timespec pause = {0, 1000000L};
    nanosleep(&pause, NULL);
  }
}

int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  wait_at_gate();
  return real(fd);
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  wait_at_gate();
  return real(fd);
}

int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags) {
  static int (*real)(int, off_t, off_t, unsigned int);
  if (!real) real = (int (*)(int, off_t, off_t, unsigned int))dlsym(RTLD_NEXT, "sync_file_range");
  wait_at_gate();
  return real(fd, offset, nbytes, flags);
}
