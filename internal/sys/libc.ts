/**
 * The one FFI surface of s3csi over glibc (`libc.so.6`), for what Deno lacks:
 * raw file descriptors (`/dev/fuse`), `mount(2)`/`umount2(2)`, `poll(2)`,
 * Unix sockets as raw fds with `SCM_RIGHTS` fd passing, and `madvise(2)` for huge pages.
 *
 * Design rules:
 * - The library is opened lazily, on the first call, so modules that import
 *   this file but never call it need no `--allow-ffi`.
 * - errno is thread-local. It is read through `__errno_location()` right
 *   after a *synchronous* call, which runs on the JS thread. It is never read
 *   after a `nonblocking` call (those run on a worker thread): `poll` and
 *   `writeOffThread` are the nonblocking symbols, and their errors are
 *   reported as a plain -1.
 * - `read`/`write`/`writev` return `ssize_t`, but are declared here as `i32`:
 *   a 64-bit FFI result comes back as a BigInt (an allocation per call on the
 *   hot path), and every buffer we pass is far below 2 GiB, so the low 32 bits
 *   of rax carry the whole value, -1 included.
 * - Buffers passed as `"buffer"` are pinned only for the duration of the
 *   call. Pointers written into structs (iovec, msghdr) come from
 *   `Deno.UnsafePointer.of`, which does not keep the array alive: callers keep
 *   the arrays referenced in a local until the call returns.
 *
 * Requires `--allow-ffi`. x86_64 and aarch64 Linux (LP64) layouts.
 *
 * @module
 */
import { Errno, errnoName } from "../errno.ts";

/** The symbol table, one C prototype per entry. */
const SYMBOLS = {
  /** int open(const char *pathname, int flags, mode_t mode); */
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  /** int close(int fd); */
  close: { parameters: ["i32"], result: "i32" },
  /** ssize_t read(int fd, void *buf, size_t count); (result narrowed to i32, see above) */
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  /** ssize_t write(int fd, const void *buf, size_t count); (result narrowed to i32) */
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  /**
   * ssize_t write(int fd, const void *buf, size_t count); off the JS thread,
   * for writes that may block on the kernel (FUSE notifications).
   */
  writeOffThread: {
    name: "write",
    parameters: ["i32", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  /** ssize_t writev(int fd, const struct iovec *iov, int iovcnt); (result narrowed to i32) */
  writev: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  /** int poll(struct pollfd *fds, nfds_t nfds, int timeout); runs off the JS thread */
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  /** int fcntl(int fd, int cmd, long arg); (variadic in C; integer args pass the same way) */
  fcntl: { parameters: ["i32", "i32", "i64"], result: "i32" },
  /** int ioctl(int fd, unsigned long request, void *argp); (variadic in C) */
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  /** int eventfd(unsigned int initval, int flags); */
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  /**
   * int mount(const char *source, const char *target, const char *filesystemtype,
   *           unsigned long mountflags, const void *data);
   */
  mount: { parameters: ["buffer", "buffer", "buffer", "u64", "buffer"], result: "i32" },
  /** int umount2(const char *target, int flags); */
  umount2: { parameters: ["buffer", "i32"], result: "i32" },
  /** int socket(int domain, int type, int protocol); */
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  /** int bind(int sockfd, const struct sockaddr *addr, socklen_t addrlen); */
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  /** int listen(int sockfd, int backlog); */
  listen: { parameters: ["i32", "i32"], result: "i32" },
  /** int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags); */
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  /** int connect(int sockfd, const struct sockaddr *addr, socklen_t addrlen); */
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  /** int socketpair(int domain, int type, int protocol, int sv[2]); */
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  /** ssize_t sendmsg(int sockfd, const struct msghdr *msg, int flags); (narrowed to i32) */
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  /** ssize_t recvmsg(int sockfd, struct msghdr *msg, int flags); (narrowed to i32) */
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  /** int mallopt(int param, int value); 1 on success */
  mallopt: { parameters: ["i32", "i32"], result: "i32" },
  /** int madvise(void *addr, size_t length, int advice); */
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  /** int *__errno_location(void); the calling thread's errno */
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Libc | null = null;
let errnoView: Deno.UnsafePointerView | null = null;

/** The loaded symbols. Exported for hot loops that want to skip the wrappers. */
export function libc(): Libc {
  if (lib === null) {
    try {
      lib = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
    } catch (err) {
      throw new Error('Cannot load "libc.so.6" through FFI', { cause: err });
    }
    const p = lib.__errno_location();
    if (p === null) throw new Error("Cannot locate errno: __errno_location() returned NULL");
    // The JS thread's errno lives at a fixed address for the life of the thread.
    errnoView = new Deno.UnsafePointerView(p);
  }
  return lib;
}

/** errno of the JS thread. Valid only right after a failed synchronous call. */
export function errno(): number {
  libc();
  return errnoView!.getInt32(0);
}

/** Linux errno values, under the short name this layer uses. */
export const E = Errno;

export { errnoName };

/** A failed system call: which one and the errno it set. */
export class SysError extends Error {
  readonly code: string;
  constructor(readonly syscall: string, readonly errno: number, detail?: string) {
    const code = errnoName(errno);
    super(`${syscall} failed: ${code}${detail ? ` (${detail})` : ""}`);
    this.name = "SysError";
    this.code = code;
  }
}

// open(2) flags.
export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const O_DIRECTORY = 0o200000;
export const O_PATH = 0o10000000;

// fcntl(2) commands.
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const FD_CLOEXEC = 1;

// poll(2) events.
export const POLLIN = 0x1;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;

// eventfd(2) flags.
export const EFD_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;

// mount(2) flags.
export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;
export const MS_NOATIME = 1024;
export const MS_BIND = 4096;
export const MS_REC = 16384;

// umount2(2) flags.
export const MNT_FORCE = 1;
export const MNT_DETACH = 2;
export const MNT_EXPIRE = 4;
export const UMOUNT_NOFOLLOW = 8;

// Sockets.
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_SEQPACKET = 5;
export const SOCK_CLOEXEC = 0o2000000;
export const SOCK_NONBLOCK = 0o4000;
export const SOL_SOCKET = 1;
export const SCM_RIGHTS = 1;
export const MSG_CMSG_CLOEXEC = 0x40000000;
export const MSG_CTRUNC = 0x8;

const enc = new TextEncoder();

/** A NUL-terminated copy of `s` for a `const char *` parameter. */
function cstr(s: string): Uint8Array<ArrayBuffer> {
  const bytes = enc.encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

function check(syscall: string, r: number, detail?: string): number {
  if (r < 0) throw new SysError(syscall, errno(), detail);
  return r;
}

/** open(2): a raw fd. */
export function open(path: string, flags: number, mode = 0): number {
  return check("open", libc().open(cstr(path), flags, mode), `"${path}"`);
}

/** close(2). EINTR is not retried: Linux always releases the fd. */
export function close(fd: number): void {
  const r = libc().close(fd);
  if (r < 0) {
    const e = errno();
    if (e !== E.EINTR) throw new SysError("close", e);
  }
}

/**
 * read(2), synchronous. Returns the byte count, or -errno (no throw: callers
 * branch on EAGAIN). The FUSE channel calls the symbol itself on its hot
 * path; this wrapper lets the tests check the declaration it relies on.
 */
export function readRaw(fd: number, buf: Uint8Array<ArrayBuffer>, len = buf.byteLength): number {
  const r = libc().read(fd, buf, BigInt(len));
  return r < 0 ? -errno() : r;
}

/** read(2), synchronous; throws SysError. */
export function read(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  return check("read", libc().read(fd, buf, BigInt(buf.byteLength)));
}

/** write(2), synchronous; throws SysError. */
export function write(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  return check("write", libc().write(fd, buf, BigInt(buf.byteLength)));
}

/**
 * writev(2) of the given chunks in one call. Returns the byte count, or
 * -errno. The chunks stay referenced by `chunks` while the call runs. The
 * FUSE channel keeps its own iovec; this wrapper lets the tests check the
 * declaration it relies on.
 */
export function writevRaw(fd: number, chunks: readonly Uint8Array[]): number {
  const iov = new BigUint64Array(chunks.length * 2);
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i]!;
    iov[2 * i] = c.byteLength === 0 ? 0n : pointerValue(c);
    iov[2 * i + 1] = BigInt(c.byteLength);
  }
  const r = libc().writev(fd, new Uint8Array(iov.buffer), chunks.length);
  return r < 0 ? -errno() : r;
}

/** The address of a typed array's first byte (byteOffset included). */
export function pointerValue(a: Uint8Array): bigint {
  // SAFETY: the address is only valid while `a` is referenced by the caller.
  const p = Deno.UnsafePointer.of(a as Uint8Array<ArrayBuffer>);
  if (p === null) throw new Error("Cannot take the address of an empty or detached buffer");
  return BigInt(Deno.UnsafePointer.value(p));
}

/**
 * poll(2) off the JS thread. Resolves with the `revents` of each fd. When
 * poll fails it throws a SysError with errno -1: errno is not readable after
 * a nonblocking call (it belongs to the worker thread).
 */
export async function poll(
  fds: readonly { fd: number; events: number }[],
  timeoutMs: number,
): Promise<number[]> {
  const buf = new Uint8Array(8 * fds.length);
  const view = new DataView(buf.buffer);
  fds.forEach((p, i) => {
    view.setInt32(8 * i, p.fd, true);
    view.setInt16(8 * i + 4, p.events, true);
  });
  const r = await libc().poll(buf, BigInt(fds.length), timeoutMs);
  if (r < 0) throw new SysError("poll", -1, "errno unavailable after a nonblocking call");
  return fds.map((_, i) => view.getUint16(8 * i + 6, true));
}

/** fcntl(fd, F_GETFL) | O_NONBLOCK → F_SETFL. */
export function setNonBlocking(fd: number): void {
  const l = libc();
  const flags = check("fcntl(F_GETFL)", l.fcntl(fd, F_GETFL, 0n));
  if ((flags & O_NONBLOCK) === 0) {
    check("fcntl(F_SETFL)", l.fcntl(fd, F_SETFL, BigInt(flags | O_NONBLOCK)));
  }
}

/**
 * Sets or clears close-on-exec on `fd`. The node role clears it on a
 * /dev/fuse fd just for the moment a mount process is spawned, so that the
 * child inherits exactly that fd (Deno.Command cannot pass extra fds).
 */
export function setCloexec(fd: number, on: boolean): void {
  const l = libc();
  const flags = check("fcntl(F_GETFD)", l.fcntl(fd, F_GETFD, 0n));
  const next = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
  if (next !== flags) check("fcntl(F_SETFD)", l.fcntl(fd, F_SETFD, BigInt(next)));
}

/** Whether close-on-exec is set on `fd`. */
export function getCloexec(fd: number): boolean {
  return (check("fcntl(F_GETFD)", libc().fcntl(fd, F_GETFD, 0n)) & FD_CLOEXEC) !== 0;
}

/** fcntl(fd, F_GETFL): the file status flags. */
export function getFileFlags(fd: number): number {
  return check("fcntl(F_GETFL)", libc().fcntl(fd, F_GETFL, 0n));
}

/** eventfd(2): a wake-up fd for poll. */
export function eventfd(flags = EFD_CLOEXEC | EFD_NONBLOCK): number {
  return check("eventfd", libc().eventfd(0, flags));
}

/** Adds 1 to an eventfd counter, waking any poll on it. */
export function eventfdSignal(fd: number): void {
  const one = new Uint8Array(8);
  one[0] = 1;
  const r = libc().write(fd, one, 8n);
  // EAGAIN means the counter is saturated: the fd is readable anyway.
  if (r < 0 && errno() !== E.EAGAIN) throw new SysError("write(eventfd)", errno());
}

/** ioctl(2) with a pointer argument (for FUSE_DEV_IOC_CLONE: live recovery of a mount). */
export function ioctl(fd: number, request: number | bigint, arg: Uint8Array<ArrayBuffer>): number {
  return check("ioctl", libc().ioctl(fd, BigInt(request), arg));
}

/** mount(2). `data` is the comma-separated option string. */
export function mount(
  source: string,
  target: string,
  fstype: string,
  flags: number,
  data: string,
): void {
  check(
    "mount",
    libc().mount(cstr(source), cstr(target), cstr(fstype), BigInt(flags), cstr(data)),
    `"${target}"`,
  );
}

/** umount2(2). */
export function umount2(target: string, flags: number): void {
  check("umount2", libc().umount2(cstr(target), flags), `"${target}"`);
}

// Unix sockets with fd passing, and ioctl: the fd hand-off to Mountpoint Pods
// (internal/podmount) and FUSE_DEV_IOC_CLONE are built on them. Deno's own
// sockets expose no fd, and SCM_RIGHTS needs one.

/** struct sockaddr_un for `path`: family u16, then the NUL-terminated path (108 bytes at most). */
function unixAddress(path: string): Uint8Array<ArrayBuffer> {
  const bytes = enc.encode(path);
  if (bytes.length === 0 || bytes.length > 107) {
    throw new SysError("sockaddr_un", E.ENAMETOOLONG, `"${path}" is empty or over 107 bytes`);
  }
  const addr = new Uint8Array(2 + bytes.length + 1);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(bytes, 2);
  return addr;
}

/**
 * A Unix stream socket listening on `path` (non-blocking, close-on-exec).
 * The path must not exist: callers remove a stale one first.
 */
export function listenUnix(path: string, backlog = 4): number {
  const addr = unixAddress(path);
  const l = libc();
  const fd = check("socket", l.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  try {
    check("bind", l.bind(fd, addr, addr.byteLength), `"${path}"`);
    check("listen", l.listen(fd, backlog));
    return fd;
  } catch (err) {
    close(fd);
    throw err;
  }
}

/**
 * accept4(2) on a non-blocking listening socket: the connection's fd
 * (non-blocking, close-on-exec), or -1 when none is pending (EAGAIN).
 */
export function acceptUnix(listener: number): number {
  const r = libc().accept4(listener, null, null, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (r >= 0) return r;
  const e = errno();
  if (e === E.EAGAIN) return -1;
  throw new SysError("accept4", e);
}

/**
 * Runs `fn` with a short path that names `dir` (`/proc/self/fd/N`, through
 * a directory fd held until `fn` returns, or until its promise settles). A
 * Unix socket path is limited to 107 bytes, and a comm directory on the
 * host is `<kubelet>/pods/<uid>/volumes/kubernetes.io~empty-dir/comm`: with
 * a socket's name that is already 106 with the default kubelet directory.
 */
export function viaDirFd<T>(dir: string, fn: (shortDir: string) => T): T {
  const fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC | O_RDONLY);
  let result: T;
  try {
    result = fn(`/proc/self/fd/${fd}`);
  } catch (err) {
    close(fd);
    throw err;
  }
  if (result instanceof Promise) return result.finally(() => close(fd)) as T;
  close(fd);
  return result;
}

/**
 * A Unix stream socket connected to `path`, then made non-blocking
 * (close-on-exec). Connecting to a listening Unix socket completes at once;
 * ENOENT (no socket yet) and ECONNREFUSED (nobody listening) are thrown as
 * SysErrors for the caller to retry.
 */
export function connectUnix(path: string): number {
  const addr = unixAddress(path);
  const l = libc();
  const fd = check("socket", l.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  try {
    check("connect", l.connect(fd, addr, addr.byteLength), `"${path}"`);
    setNonBlocking(fd);
    return fd;
  } catch (err) {
    close(fd);
    throw err;
  }
}

/** socketpair(2): two connected sockets. */
export function socketpair(
  domain = AF_UNIX,
  type = SOCK_STREAM | SOCK_CLOEXEC,
  protocol = 0,
): [number, number] {
  const sv = new Int32Array(2);
  check("socketpair", libc().socketpair(domain, type, protocol, new Uint8Array(sv.buffer)));
  return [sv[0]!, sv[1]!];
}

// struct msghdr (56 bytes on LP64): msg_name @0, msg_namelen @8, msg_iov @16,
// msg_iovlen @24, msg_control @32, msg_controllen @40, msg_flags @48.
const MSGHDR_SIZE = 56;
// One cmsghdr carrying one int: cmsg_len u64 @0 (= 16 + 4), cmsg_level i32 @8,
// cmsg_type i32 @12, the fd @16, padded to 24 (CMSG_SPACE(sizeof(int))).
const CMSG_FD_LEN = 20;
const CMSG_FD_SPACE = 24;

/**
 * sendmsg(2) of `payload` with one fd attached (SCM_RIGHTS). Returns the
 * bytes of payload sent. The payload must be non-empty: a stream socket
 * drops ancillary data sent with zero bytes.
 */
export function sendFd(sock: number, fd: number, payload: Uint8Array<ArrayBuffer>): number {
  if (payload.byteLength === 0) throw new Error("Cannot send an fd with an empty payload");
  const iov = new BigUint64Array([pointerValue(payload), BigInt(payload.byteLength)]);
  const control = new Uint8Array(CMSG_FD_SPACE);
  const cv = new DataView(control.buffer);
  cv.setBigUint64(0, BigInt(CMSG_FD_LEN), true);
  cv.setInt32(8, SOL_SOCKET, true);
  cv.setInt32(12, SCM_RIGHTS, true);
  cv.setInt32(16, fd, true);
  const iovBytes = new Uint8Array(iov.buffer);
  const msg = new Uint8Array(MSGHDR_SIZE);
  const mv = new DataView(msg.buffer);
  mv.setBigUint64(16, pointerValue(iovBytes), true);
  mv.setBigUint64(24, 1n, true);
  mv.setBigUint64(32, pointerValue(control), true);
  mv.setBigUint64(40, BigInt(CMSG_FD_SPACE), true);
  const r = libc().sendmsg(sock, msg, 0);
  // Keep every array the kernel reads through a pointer alive past the call.
  keepAlive(payload, iovBytes, control);
  return check("sendmsg", r);
}

/**
 * recvmsg(2) into `buf`, collecting at most one fd passed with SCM_RIGHTS
 * (received close-on-exec). Blocks if the socket is blocking: poll first.
 * Returns the bytes received (0 = peer closed) and the fd or -1.
 */
export function recvFd(sock: number, buf: Uint8Array<ArrayBuffer>): { bytes: number; fd: number } {
  const iov = new BigUint64Array([pointerValue(buf), BigInt(buf.byteLength)]);
  const control = new Uint8Array(CMSG_FD_SPACE);
  const iovBytes = new Uint8Array(iov.buffer);
  const msg = new Uint8Array(MSGHDR_SIZE);
  const mv = new DataView(msg.buffer);
  mv.setBigUint64(16, pointerValue(iovBytes), true);
  mv.setBigUint64(24, 1n, true);
  mv.setBigUint64(32, pointerValue(control), true);
  mv.setBigUint64(40, BigInt(CMSG_FD_SPACE), true);
  const r = libc().recvmsg(sock, msg, MSG_CMSG_CLOEXEC);
  keepAlive(buf, iovBytes, control);
  const bytes = check("recvmsg", r);
  const cv = new DataView(control.buffer);
  const controllen = Number(mv.getBigUint64(40, true));
  let fd = -1;
  if (
    controllen >= CMSG_FD_LEN && Number(cv.getBigUint64(0, true)) === CMSG_FD_LEN &&
    cv.getInt32(8, true) === SOL_SOCKET && cv.getInt32(12, true) === SCM_RIGHTS
  ) {
    fd = cv.getInt32(16, true);
  }
  if (mv.getInt32(48, true) & MSG_CTRUNC) {
    if (fd >= 0) close(fd);
    throw new SysError("recvmsg", E.EINVAL, "control message truncated");
  }
  return { bytes, fd };
}

const retained: { last: unknown } = { last: null };
/**
 * Uses the arrays after the FFI call that reads them through raw pointers:
 * optimized code may otherwise treat them as dead (and collectable) after
 * their last JS use, which comes before the call.
 */
function keepAlive(...arrays: unknown[]): void {
  retained.last = arrays;
  retained.last = null;
}

const MADV_HUGEPAGE = 14;
const M_MMAP_THRESHOLD = -3;
const HUGE_PAGE = 2 * 1024 * 1024;

/** Set once FFI turned out to be unavailable: later calls return at once. */
let memoryAdviceUnavailable = false;

/**
 * Makes glibc serve every allocation of `bytes` or more by a fresh private
 * mapping, unmapped on free (mallopt M_MMAP_THRESHOLD; this also stops
 * glibc from raising the threshold by itself). Large buffers then never
 * share heap memory with small allocations, so advice given for them (see
 * `adviseHugePages`) dies with them. Process-wide; best effort.
 */
export function mmapLargeAllocations(bytes: number): boolean {
  if (memoryAdviceUnavailable) return false;
  try {
    return libc().mallopt(M_MMAP_THRESHOLD, bytes) === 1;
  } catch {
    memoryAdviceUnavailable = true;
    return false;
  }
}

/**
 * Asks for transparent huge pages over the 2 MiB-aligned middle of `buffer`
 * (madvise MADV_HUGEPAGE), before its pages are first touched; the range
 * advised never leaves the buffer. Best effort: false where it cannot be
 * done (no FFI, a kernel without THP, a buffer under 4 MiB). Only useful on
 * a buffer that is its own mapping (`mmapLargeAllocations`).
 */
export function adviseHugePages(buffer: ArrayBuffer): boolean {
  if (memoryAdviceUnavailable || buffer.byteLength < 2 * HUGE_PAGE) return false;
  try {
    const p = Deno.UnsafePointer.of(new Uint8Array(buffer));
    if (p === null) return false;
    const addr = BigInt(Deno.UnsafePointer.value(p));
    const huge = BigInt(HUGE_PAGE);
    const start = (addr + huge - 1n) / huge * huge;
    const end = (addr + BigInt(buffer.byteLength)) / huge * huge;
    if (end <= start) return false;
    return libc().madvise(Deno.UnsafePointer.create(start), end - start, MADV_HUGEPAGE) === 0;
  } catch {
    memoryAdviceUnavailable = true;
    return false;
  }
}
