/**
 * The FUSE session: reads requests from a /dev/fuse fd, dispatches them to a
 * `FileSystem` (internal/fs/api.ts) and writes the replies.
 *
 * Loop. The fd is O_NONBLOCK. The loop reads synchronously until EAGAIN,
 * then awaits a nonblocking `poll(POLLIN)` (which runs off the JS thread)
 * on the fd and on an eventfd that `stop()` signals. errno is read only after
 * the synchronous calls. When a handler finishes while the loop sits in poll,
 * the device is read again right away: the kernel often has the next request
 * queued already. read() errors: EAGAIN → poll; ENOENT (the request
 * was interrupted before we read it) and EINTR → read again; ENODEV (the
 * file system was unmounted) and ECONNABORTED (the connection was aborted,
 * with ABORT_ERROR) → clean end of the session.
 *
 * Concurrency. Each request is read into its own buffer from a pool of
 * `maxInFlight` buffers of `maxWrite + 4096` bytes (the kernel refuses reads
 * into a buffer smaller than max_write + 80). A handler owns its buffer until
 * it finishes, because WRITE data is a view into it and because the reply is
 * encoded into the same buffer (the request is fully decoded by then), which
 * spares an allocation per reply. When the pool is empty the loop stops
 * reading until a handler finishes; the kernel keeps the rest queued.
 *
 * Replies. Every request except FORGET, BATCH_FORGET and INTERRUPT is
 * answered exactly once: a handler that neither replied nor threw is
 * answered EIO (and logged) in its `finally`. Header and payload go out in
 * one write (or one writev for READ data, so the data is not copied), and the
 * byte count is checked. A write failing with ENOENT means the kernel already
 * forgot the request (interrupted or aborted): not an error.
 *
 * Errors. An `FsError` gives its errno. Anything else gives EIO and an error
 * log naming the opcode; a handler that fails after its request was
 * interrupted gets EINTR.
 *
 * Operations the FS interface lacks are answered here: SYMLINK and LINK →
 * EPERM; FSYNCDIR, ACCESS, READLINK, xattrs, locks, FALLOCATE, LSEEK,
 * COPY_FILE_RANGE, IOCTL, POLL, BMAP, TMPFILE, STATX and unknown opcodes →
 * ENOSYS (the kernel then falls back or stops asking; see the protocol notes).
 * CREATE is mknod + open in one round trip.
 *
 * Notifications. `invalidateInode` / `invalidateEntry` push cache
 * invalidations to the kernel (for changes made behind its back, e.g. in S3).
 * They are written off the JS thread because the kernel may wait on requests
 * this very loop has to answer.
 *
 * allow_root. The kernel knows only allow_other, so with `allowRoot` the
 * mount is made with allow_other and this session refuses, with EACCES,
 * requests from uids other than the mount owner and root.
 *
 * @module
 */

import {
  Errno,
  type FileSystem,
  FsError,
  type Ino,
  type RequestContext,
  S_IFMT,
  S_IFREG,
  type SetattrChanges,
} from "../fs/api.ts";
import { log as rootLog, type Logger } from "../log/mod.ts";
import { errorMessage } from "../errors/mod.ts";
import {
  close as sysClose,
  E,
  errno,
  eventfd,
  eventfdSignal,
  libc,
  pointerValue,
  POLLIN,
  SysError,
} from "../sys/libc.ts";
import {
  FATTR,
  FUSE_FSYNC_FDATASYNC,
  FUSE_KERNEL_VERSION,
  FUSE_MIN_KERNEL_MINOR,
  FUSE_OUR_MINOR,
  InitFlag,
  initFlagNames,
  NOTIFY,
  Op,
  opName,
} from "./abi.ts";
import { DecodeError, decodeRequest, type InitRequest, type Request } from "./request.ts";
import {
  DirentPacker,
  INIT_OUT_SIZE,
  OUT_HEADER_SIZE,
  setU64,
  writeAttrOut,
  writeEntryOut,
  writeInitOut,
  writeOpenOut,
  writeOutHeader,
  writeStatfsOut,
  writeWriteOut,
} from "./reply.ts";

export type ReaddirplusMode = "off" | "auto" | "always";

export interface SessionOptions {
  /** Largest WRITE the kernel may send (init_out.max_write). Default 1 MiB. */
  maxWrite?: number;
  /** Upper bound for init_out.max_readahead (the kernel's offer wins if smaller). Default 1 MiB. */
  maxReadahead?: number;
  /** Kernel background request limit (readahead, async I/O). Default 64. */
  maxBackground?: number;
  /** Background requests at which the kernel marks the bdi congested. Default 48. */
  congestionThreshold?: number;
  /** Timestamp granularity in ns. Default 1. */
  timeGran?: number;
  /** Requests handled at once, each with its own buffer of maxWrite + 4 KiB. Default 32. */
  maxInFlight?: number;
  /** READDIRPLUS use: "auto" lets the kernel pick per listing (default). */
  readdirplus?: ReaddirplusMode;
  /** Negotiate ASYNC_DIO (parallel requests for one large O_DIRECT call). Default false: it reorders writes. */
  asyncDio?: boolean;
  /** Refuse requests from uids other than `ownerUid` and 0 (allow_root emulation). */
  allowRoot?: boolean;
  /** The mount owner for `allowRoot`. Default: the process uid. */
  ownerUid?: number;
  /** Close the fd when the session ends. Default true. */
  closeFd?: boolean;
  /** Logger; default `log.with({ component: "fuse" })`. */
  logger?: Logger;
}

/** What INIT settled on, for logs, tests and benchmarks. */
export interface Negotiated {
  major: number;
  minor: number;
  kernelMinor: number;
  flags: bigint;
  flagNames: string[];
  maxWrite: number;
  maxReadahead: number;
  maxPages: number;
  maxBackground: number;
  congestionThreshold: number;
  timeGran: number;
}

const PAGE_SIZE = 4096;
const MIB = 1024 * 1024;
/** Request buffers hold max_write plus headers; 4 KiB covers in_header + write_in with room to spare. */
const BUFFER_HEADROOM = 4096;
/** READ replies up to this size are copied after the header (one write) instead of writev'd. */
const COPY_REPLY_LIMIT = 16 * 1024;

/** Requests the kernel sends on its own behalf: exempt from the allow_root filter. */
const ACL_EXEMPT = new Set<number>([
  Op.INIT,
  Op.DESTROY,
  Op.FORGET,
  Op.BATCH_FORGET,
  Op.INTERRUPT,
  Op.RELEASE,
  Op.RELEASEDIR,
]);

/** Answered by the session itself without reaching the FS. */
const FIXED_ERRNO = new Map<number, number>([
  [Op.SYMLINK, Errno.EPERM],
  [Op.LINK, Errno.EPERM],
  [Op.FSYNCDIR, Errno.ENOSYS],
  [Op.ACCESS, Errno.ENOSYS],
  [Op.READLINK, Errno.ENOSYS],
  [Op.SETXATTR, Errno.ENOSYS],
  [Op.GETXATTR, Errno.ENOSYS],
  [Op.LISTXATTR, Errno.ENOSYS],
  [Op.REMOVEXATTR, Errno.ENOSYS],
  [Op.GETLK, Errno.ENOSYS],
  [Op.SETLK, Errno.ENOSYS],
  [Op.SETLKW, Errno.ENOSYS],
  [Op.BMAP, Errno.ENOSYS],
  [Op.IOCTL, Errno.ENOSYS],
  [Op.POLL, Errno.ENOSYS],
  [Op.FALLOCATE, Errno.ENOSYS],
  [Op.LSEEK, Errno.ENOSYS],
  [Op.COPY_FILE_RANGE, Errno.ENOSYS],
  [Op.COPY_FILE_RANGE_64, Errno.ENOSYS],
  [Op.SETUPMAPPING, Errno.ENOSYS],
  [Op.REMOVEMAPPING, Errno.ENOSYS],
  [Op.SYNCFS, Errno.ENOSYS],
  [Op.TMPFILE, Errno.ENOSYS],
  [Op.STATX, Errno.ENOSYS],
]);

/** A request buffer with its reusable views. */
class Slot {
  readonly buf: Uint8Array<ArrayBuffer>;
  readonly view: DataView;
  /** Address of buf[0], for writev; stable because the buffer is never detached. */
  readonly addr: bigint;
  /** buf.byteLength as the size_t the read syscall wants. */
  readonly size: bigint;
  #packer: DirentPacker | null = null;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
    this.addr = pointerValue(this.buf);
    this.size = BigInt(size);
  }

  get packer(): DirentPacker {
    return this.#packer ??= new DirentPacker(this.buf, this.view);
  }
}

/** One request being handled: its context for the FS, and whether it was answered. */
class Call implements RequestContext {
  replied = false;
  aborted = false;
  /** The errno answered, 0 for success (for the debug log). */
  errno = 0;
  #ac: AbortController | null = null;

  constructor(
    readonly slot: Slot,
    readonly unique: number,
    readonly opcode: number,
    readonly uid: number,
    readonly gid: number,
    readonly pid: number,
    readonly started: number,
  ) {}

  /** Created on first use: most requests never look at it. */
  get signal(): AbortSignal {
    return (this.#ac ??= new AbortController()).signal;
  }

  abort(reason: string): void {
    if (this.aborted) return;
    this.aborted = true;
    (this.#ac ??= new AbortController()).abort(new DOMException(reason, "AbortError"));
  }
}

export class FuseSession {
  readonly #fd: number;
  readonly #fs: FileSystem;
  readonly #log: Logger;
  readonly #maxWrite: number;
  readonly #maxReadahead: number;
  readonly #maxBackground: number;
  readonly #congestionThreshold: number;
  readonly #timeGran: number;
  readonly #maxInFlight: number;
  readonly #wantFlags: bigint;
  readonly #ownerUid: number | undefined;
  readonly #closeFd: boolean;

  readonly #free: Slot[] = [];
  #allocated = 0;
  #slotWaiter: (() => void) | null = null;
  readonly #inflight = new Map<number, Call>();
  #active = 0;
  #idleWaiter: (() => void) | null = null;

  #wakeFd = -1;
  #polling = false;
  #draining = false;
  #endReason: string | null = null;
  #loopError: unknown = null;
  readonly #notifying = new Set<Promise<number>>();
  readonly #pollfds = new Uint8Array(16);
  readonly #pollView = new DataView(this.#pollfds.buffer);
  readonly #iov = new BigUint64Array(4);
  readonly #iovBytes = new Uint8Array(this.#iov.buffer);

  #negotiated: Negotiated | null = null;
  #initDone = false;
  #destroyed = false;
  #stopping = false;
  #ending = false;
  #running: Promise<void> | null = null;
  readonly #ready = Promise.withResolvers<Negotiated>();

  constructor(fd: number, fs: FileSystem, options: SessionOptions = {}) {
    this.#fd = fd;
    this.#fs = fs;
    this.#log = options.logger ?? rootLog.with({ component: "fuse" });
    this.#maxWrite = Math.max(PAGE_SIZE, options.maxWrite ?? MIB);
    this.#maxReadahead = options.maxReadahead ?? MIB;
    this.#maxBackground = options.maxBackground ?? 64;
    this.#congestionThreshold = options.congestionThreshold ?? 48;
    this.#timeGran = options.timeGran ?? 1;
    this.#maxInFlight = Math.max(1, options.maxInFlight ?? 32);
    this.#ownerUid = options.allowRoot ? (options.ownerUid ?? Deno.uid() ?? 0) : undefined;
    this.#closeFd = options.closeFd ?? true;

    let want = InitFlag.ASYNC_READ! | InitFlag.ATOMIC_O_TRUNC! | InitFlag.BIG_WRITES! |
      InitFlag.AUTO_INVAL_DATA! | InitFlag.PARALLEL_DIROPS! | InitFlag.ABORT_ERROR! |
      InitFlag.MAX_PAGES!;
    const plus = options.readdirplus ?? "auto";
    if (plus !== "off") want |= InitFlag.DO_READDIRPLUS!;
    if (plus === "auto") want |= InitFlag.READDIRPLUS_AUTO!;
    if (options.asyncDio) want |= InitFlag.ASYNC_DIO!;
    // Bits 32..63 travel in flags2, which the kernel reads only with INIT_EXT.
    if (want >> 32n) want |= InitFlag.INIT_EXT!;
    this.#wantFlags = want;
    // `ready` may have no listener; its rejection must not count as unhandled.
    this.#ready.promise.catch(() => {});
  }

  /** The INIT outcome, once the kernel's INIT has been answered. */
  get negotiated(): Negotiated | null {
    return this.#negotiated;
  }

  /**
   * Resolves with the INIT outcome once the kernel's INIT is answered (the
   * mount is usable from then on); rejects if the session ends first.
   */
  get ready(): Promise<Negotiated> {
    return this.#ready.promise;
  }

  /**
   * Tells the kernel to drop its cached attributes of `ino` and its cached
   * data from `offset` for `length` bytes (0 = to the end; offset -1 =
   * attributes only). Resolves false if the kernel refused (typically: the
   * inode is not cached, or the session has not finished INIT).
   *
   * The write happens off the JS thread: the kernel may wait for requests
   * this session is still handling (it locks the inode), and a blocking write
   * on the JS thread would deadlock.
   */
  async invalidateInode(ino: Ino, offset = 0, length = 0): Promise<boolean> {
    const b = new Uint8Array(OUT_HEADER_SIZE + 24);
    const v = new DataView(b.buffer);
    writeOutHeader(v, 0, b.byteLength, 0, 0);
    v.setInt32(4, NOTIFY.INVAL_INODE, true); // notifications carry a positive code
    setU64(v, OUT_HEADER_SIZE, ino);
    setU64(v, OUT_HEADER_SIZE + 8, offset);
    setU64(v, OUT_HEADER_SIZE + 16, length);
    return await this.#notify(b);
  }

  /**
   * Tells the kernel to forget the dentry `name` in directory `parent` (and
   * so look it up again). Resolves false if the kernel refused (typically:
   * not cached). Written off the JS thread, see `invalidateInode`.
   */
  async invalidateEntry(parent: Ino, name: string): Promise<boolean> {
    const nameBytes = new TextEncoder().encode(name);
    const b = new Uint8Array(OUT_HEADER_SIZE + 16 + nameBytes.byteLength + 1);
    const v = new DataView(b.buffer);
    writeOutHeader(v, 0, b.byteLength, 0, 0);
    v.setInt32(4, NOTIFY.INVAL_ENTRY, true);
    setU64(v, OUT_HEADER_SIZE, parent);
    v.setUint32(OUT_HEADER_SIZE + 8, nameBytes.byteLength, true);
    v.setUint32(OUT_HEADER_SIZE + 12, 0, true); // flags
    b.set(nameBytes, OUT_HEADER_SIZE + 16);
    return await this.#notify(b);
  }

  async #notify(b: Uint8Array<ArrayBuffer>): Promise<boolean> {
    if (!this.#initDone || this.#ending) return false;
    const pending = libc().writeOffThread(this.#fd, b, BigInt(b.byteLength));
    // The fd must stay open until the write returns: #run waits for these.
    this.#notifying.add(pending);
    try {
      const r = await pending;
      // `b` is used after the await, so it outlives the off-thread write.
      return r === b.byteLength;
    } finally {
      this.#notifying.delete(pending);
    }
  }

  /** Requests being handled right now. */
  get inFlight(): number {
    return this.#active;
  }

  /**
   * Serves requests until the file system is unmounted (or `stop()` is
   * called), then waits for in-flight handlers, calls `fs.destroy()` and
   * closes the fd. Rejects if reading the device fails unexpectedly.
   */
  run(): Promise<void> {
    return this.#running ??= this.#run();
  }

  /**
   * Stops reading requests and ends the session as `run()` does. The mount
   * itself stays until unmounted; once the fd is closed it answers ENOTCONN
   * ("stale"). To end a session cleanly, unmount instead.
   */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    if (this.#wakeFd >= 0) eventfdSignal(this.#wakeFd);
    this.#slotWaiter?.();
  }

  async #run(): Promise<void> {
    this.#wakeFd = eventfd();
    let failure: unknown = null;
    let why = "stopped";
    try {
      why = await this.#loop();
    } catch (err) {
      failure = err;
      why = "failed";
    }
    this.#ending = true;
    this.#ready.reject(new Error(`FUSE session ended before INIT: ${why}`, { cause: failure }));
    this.#log.debug("FUSE session ending", { reason: why, inFlight: this.#active });
    for (const call of this.#inflight.values()) call.abort("FUSE session ended");
    if (this.#active > 0) {
      await new Promise<void>((resolve) => (this.#idleWaiter = resolve));
    }
    await this.#destroyFs();
    await Promise.allSettled([...this.#notifying]);
    try {
      if (this.#closeFd) sysClose(this.#fd);
    } finally {
      sysClose(this.#wakeFd);
      this.#wakeFd = -1;
    }
    if (failure !== null) throw failure;
  }

  async #destroyFs(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    try {
      await this.#fs.destroy?.();
    } catch (err) {
      this.#log.error("File system destroy failed", { error: err });
    }
  }

  async #loop(): Promise<string> {
    while (true) {
      const r = this.#drain();
      if (r === "end") return this.#endReason ?? "stopped";
      if (r === "full") {
        await new Promise<void>((resolve) => (this.#slotWaiter = resolve));
        this.#slotWaiter = null;
      } else {
        this.#polling = true;
        await this.#poll();
        this.#polling = false;
      }
      if (this.#loopError !== null) throw this.#loopError;
    }
  }

  /**
   * Reads and dispatches requests until the device has none ("idle"), every
   * buffer is busy ("full") or the session ends ("end", see #endReason).
   */
  #drain(): "idle" | "full" | "end" {
    if (this.#draining) return "idle";
    this.#draining = true;
    try {
      const l = libc();
      const fd = this.#fd;
      while (!this.#stopping && this.#endReason === null) {
        const slot = this.#takeSlot();
        if (slot === null) return "full";
        const n = l.read(fd, slot.buf, slot.size);
        if (n > 0) {
          this.#dispatch(slot, n);
          continue;
        }
        this.#free.push(slot);
        if (n === 0) {
          // /dev/fuse never returns 0; a socket standing in for it (tests) does at EOF.
          this.#endReason = "eof";
          break;
        }
        const e = errno();
        if (e === E.EAGAIN) return "idle";
        if (e === E.ENOENT || e === E.EINTR) continue;
        if (e === E.ENODEV || e === E.ECONNABORTED) {
          this.#endReason = "unmounted";
          break;
        }
        throw new SysError("read", e, "/dev/fuse");
      }
      return "end";
    } finally {
      this.#draining = false;
    }
  }

  /**
   * Called when a handler finishes while the loop waits in poll: the kernel
   * often has the next request queued already (readahead keeps several in
   * flight), and reading it now saves the round trip through the poll thread.
   */
  #drainAfterReply(): void {
    if (!this.#polling || this.#draining || this.#ending) return;
    try {
      if (this.#drain() === "end") eventfdSignal(this.#wakeFd);
    } catch (err) {
      this.#loopError = err;
      eventfdSignal(this.#wakeFd);
    }
  }

  /** Waits until the device (or the stop eventfd) is readable. */
  async #poll(): Promise<void> {
    const v = this.#pollView;
    v.setInt32(0, this.#fd, true);
    v.setInt16(4, POLLIN, true);
    v.setInt16(6, 0, true);
    v.setInt32(8, this.#wakeFd, true);
    v.setInt16(12, POLLIN, true);
    v.setInt16(14, 0, true);
    // errno is unreadable after a nonblocking call; a failed poll (EINTR) just loops.
    await libc().poll(this.#pollfds, 2n, -1);
  }

  #takeSlot(): Slot | null {
    const s = this.#free.pop();
    if (s) return s;
    if (this.#allocated >= this.#maxInFlight) return null;
    this.#allocated++;
    return new Slot(this.#maxWrite + BUFFER_HEADROOM);
  }

  #releaseSlot(slot: Slot): void {
    this.#free.push(slot);
    const w = this.#slotWaiter;
    if (w) {
      this.#slotWaiter = null;
      w();
    }
  }

  /** Classifies one request; answers the simple ones inline, starts a handler for the rest. */
  #dispatch(slot: Slot, n: number): void {
    const req = decodeRequest(slot.buf, n, slot.view);
    if (req instanceof DecodeError) {
      this.#onDecodeError(slot, req);
      this.#releaseSlot(slot);
      return;
    }
    const opcode = req.opcode;
    if (opcode === Op.FORGET || opcode === Op.BATCH_FORGET || opcode === Op.INTERRUPT) {
      this.#noReply(req);
      this.#releaseSlot(slot);
      return;
    }
    let fixed: number | undefined;
    if (!this.#initDone && opcode !== Op.INIT) {
      fixed = Errno.EIO; // the kernel sends nothing before INIT; refuse anything that claims otherwise
    } else if (
      this.#ownerUid !== undefined && req.uid !== this.#ownerUid && req.uid !== 0 &&
      !ACL_EXEMPT.has(opcode)
    ) {
      fixed = Errno.EACCES;
    } else {
      fixed = FIXED_ERRNO.get(opcode);
    }
    if (fixed !== undefined) {
      this.#sendError(slot, req.unique, fixed);
      if (this.#log.enabled("debug")) {
        this.#log.debug("FUSE request", {
          op: opName(opcode),
          nodeid: req.nodeid,
          unique: req.unique,
          errno: fixed,
        });
      }
      this.#releaseSlot(slot);
      return;
    }
    const call = new Call(slot, req.unique, opcode, req.uid, req.gid, req.pid, performance.now());
    this.#inflight.set(req.unique, call);
    this.#active++;
    this.#handle(call, req);
  }

  #onDecodeError(slot: Slot, err: DecodeError): void {
    const op = err.opcode;
    const silent = op === Op.FORGET || op === Op.BATCH_FORGET || op === Op.INTERRUPT ||
      op === Op.NOTIFY_REPLY;
    if (err.kind === "UnknownOpcode") {
      this.#log.debug("Unknown FUSE opcode", { opcode: op, unique: err.unique });
    } else {
      this.#log.warn("Malformed FUSE request", { kind: err.kind, error: err.message });
    }
    if (err.unique !== undefined && !silent) {
      this.#sendError(slot, err.unique, err.kind === "UnknownOpcode" ? Errno.ENOSYS : Errno.EIO);
    }
  }

  /** FORGET, BATCH_FORGET and INTERRUPT: never answered. */
  #noReply(req: Request): void {
    try {
      if (req.op === "FORGET") {
        this.#fs.forget(req.nodeid, req.nlookup);
      } else if (req.op === "BATCH_FORGET") {
        for (const f of req.forgets) this.#fs.forget(f.nodeid, f.nlookup);
      } else if (req.op === "INTERRUPT") {
        const victim = this.#inflight.get(req.target);
        this.#log.debug("FUSE interrupt", { target: req.target, found: victim !== undefined });
        victim?.abort("Request interrupted by the kernel");
      }
    } catch (err) {
      this.#log.error("FUSE forget failed", { op: req.op, error: err });
    }
  }

  async #handle(call: Call, req: Request): Promise<void> {
    try {
      await this.#serve(call, req);
    } catch (err) {
      if (!call.replied) {
        if (err instanceof FsError) {
          const e = err.errno > 0 && err.errno < 4096 ? err.errno : Errno.EIO;
          this.#replyError(call, e);
        } else if (call.aborted) {
          this.#replyError(call, Errno.EINTR);
        } else {
          this.#log.error("FUSE handler failed", {
            op: opName(call.opcode),
            nodeid: req.nodeid,
            error: err,
          });
          this.#replyError(call, Errno.EIO);
        }
      } else {
        this.#log.error("FUSE handler failed after replying", {
          op: opName(call.opcode),
          error: errorMessage(err),
        });
      }
    } finally {
      if (!call.replied) {
        this.#log.error("FUSE handler returned without replying", { op: opName(call.opcode) });
        this.#replyError(call, Errno.EIO);
      }
      if (this.#log.enabled("debug")) {
        this.#log.debug("FUSE request", {
          op: opName(call.opcode),
          nodeid: req.nodeid,
          unique: call.unique,
          errno: call.errno,
          ms: Math.round((performance.now() - call.started) * 1000) / 1000,
        });
      }
      this.#inflight.delete(call.unique);
      this.#releaseSlot(call.slot);
      this.#drainAfterReply();
      if (--this.#active === 0 && this.#idleWaiter) {
        const w = this.#idleWaiter;
        this.#idleWaiter = null;
        w();
      }
    }
  }

  /** The per-opcode work. Replies through #replyOk/#replyData/#replyError. */
  async #serve(call: Call, req: Request): Promise<void> {
    const fs = this.#fs;
    const v = call.slot.view;
    const P = OUT_HEADER_SIZE;
    switch (req.op) {
      case "READ": {
        const data = await fs.read(call, req.nodeid, req.fh, req.offset, req.size);
        this.#replyData(call, data.byteLength > req.size ? data.subarray(0, req.size) : data);
        return;
      }
      case "WRITE": {
        const n = await fs.write(call, req.nodeid, req.fh, req.offset, req.data);
        this.#replyOk(call, writeWriteOut(v, P, n));
        return;
      }
      case "LOOKUP": {
        const e = await fs.lookup(call, req.nodeid, req.name);
        this.#replyOk(call, writeEntryOut(v, P, e));
        return;
      }
      case "GETATTR": {
        const a = await fs.getattr(call, req.nodeid, req.fh);
        this.#replyOk(call, writeAttrOut(v, P, a));
        return;
      }
      case "SETATTR": {
        const ch: SetattrChanges = {};
        const valid = req.valid;
        if (valid & FATTR.MODE) ch.mode = req.mode;
        if (valid & FATTR.UID) ch.uid = req.newUid;
        if (valid & FATTR.GID) ch.gid = req.newGid;
        if (valid & FATTR.SIZE) ch.size = req.size;
        if (valid & FATTR.ATIME_NOW) ch.atimeMs = "now";
        else if (valid & FATTR.ATIME) ch.atimeMs = req.atime * 1000 + req.atimensec / 1e6;
        if (valid & FATTR.MTIME_NOW) ch.mtimeMs = "now";
        else if (valid & FATTR.MTIME) ch.mtimeMs = req.mtime * 1000 + req.mtimensec / 1e6;
        const fh = valid & FATTR.FH ? req.fh : undefined;
        const a = await fs.setattr(call, req.nodeid, ch, fh);
        this.#replyOk(call, writeAttrOut(v, P, a));
        return;
      }
      case "OPEN":
      case "OPENDIR": {
        const o = req.op === "OPEN"
          ? await fs.open(call, req.nodeid, req.flags)
          : await fs.opendir(call, req.nodeid, req.flags);
        this.#replyOk(call, writeOpenOut(v, P, o));
        return;
      }
      case "READDIR":
      case "READDIRPLUS": {
        const plus = req.op === "READDIRPLUS";
        const packer = call.slot.packer.reset(
          P,
          Math.min(req.size, call.slot.buf.byteLength - P),
          plus,
        );
        await fs.readdir(call, req.nodeid, req.fh, req.offset, plus, (e) => packer.add(e));
        this.#replyOk(call, packer.length);
        return;
      }
      case "FLUSH":
        await fs.flush(call, req.nodeid, req.fh);
        this.#replyOk(call, 0);
        return;
      case "RELEASE":
        await fs.release(call, req.nodeid, req.fh, req.flags);
        this.#replyOk(call, 0);
        return;
      case "RELEASEDIR":
        await fs.releasedir(call, req.nodeid, req.fh);
        this.#replyOk(call, 0);
        return;
      case "FSYNC":
        await fs.fsync(call, req.nodeid, req.fh, (req.fsyncFlags & FUSE_FSYNC_FDATASYNC) !== 0);
        this.#replyOk(call, 0);
        return;
      case "MKNOD": {
        const e = await fs.mknod(call, req.nodeid, req.name, req.mode, req.umask);
        this.#replyOk(call, writeEntryOut(v, P, e));
        return;
      }
      case "MKDIR": {
        const e = await fs.mkdir(call, req.nodeid, req.name, req.mode, req.umask);
        this.#replyOk(call, writeEntryOut(v, P, e));
        return;
      }
      case "CREATE":
        await this.#create(call, req.nodeid, req.name, req.mode, req.umask, req.flags);
        return;
      case "UNLINK":
        await fs.unlink(call, req.nodeid, req.name);
        this.#replyOk(call, 0);
        return;
      case "RMDIR":
        await fs.rmdir(call, req.nodeid, req.name);
        this.#replyOk(call, 0);
        return;
      case "RENAME":
      case "RENAME2":
        await fs.rename(call, req.nodeid, req.name, req.newdir, req.newName, req.flags);
        this.#replyOk(call, 0);
        return;
      case "STATFS": {
        const s = await fs.statfs(call, req.nodeid);
        this.#replyOk(call, writeStatfsOut(v, P, s));
        return;
      }
      case "INIT":
        await this.#init(call, req);
        return;
      case "DESTROY":
        await this.#destroyFs();
        this.#replyOk(call, 0);
        return;
      default:
        // Every other opcode is answered in #dispatch; reaching here is a bug.
        this.#replyError(call, Errno.ENOSYS);
    }
  }

  async #create(
    call: Call,
    parent: Ino,
    name: string,
    mode: number,
    umask: number,
    flags: number,
  ): Promise<void> {
    const fileMode = (mode & S_IFMT) === 0 ? mode | S_IFREG : mode;
    const entry = await this.#fs.mknod(call, parent, name, fileMode, umask);
    let opened;
    try {
      opened = await this.#fs.open(call, entry.ino, flags);
    } catch (err) {
      // The kernel never learns about the entry: give back the lookup mknod added.
      try {
        this.#fs.forget(entry.ino, 1);
      } catch (forgetErr) {
        this.#log.error("FUSE forget after failed create failed", { error: forgetErr });
      }
      throw err;
    }
    const v = call.slot.view;
    const n = writeEntryOut(v, OUT_HEADER_SIZE, entry);
    this.#replyOk(call, n + writeOpenOut(v, OUT_HEADER_SIZE + n, opened));
  }

  async #init(call: Call, req: InitRequest): Promise<void> {
    const v = call.slot.view;
    const P = OUT_HEADER_SIZE;
    if (req.major > FUSE_KERNEL_VERSION) {
      // Tell the kernel our major; it sends another INIT.
      writeInitOut(v, P, {
        major: FUSE_KERNEL_VERSION,
        minor: FUSE_OUR_MINOR,
        maxReadahead: 0,
        flags: 0n,
        maxBackground: 0,
        congestionThreshold: 0,
        maxWrite: 0,
        timeGran: 0,
        maxPages: 0,
      });
      this.#replyOk(call, INIT_OUT_SIZE);
      this.#log.info("Kernel offered a newer FUSE major version, answered with ours", {
        kernel: `${req.major}.${req.minor}`,
      });
      return;
    }
    if (req.major < FUSE_KERNEL_VERSION || req.minor < FUSE_MIN_KERNEL_MINOR) {
      this.#log.error("Kernel FUSE protocol is too old", {
        kernel: `${req.major}.${req.minor}`,
        required: `${FUSE_KERNEL_VERSION}.${FUSE_MIN_KERNEL_MINOR}`,
      });
      this.#replyError(call, E.EPROTO);
      return;
    }
    const flags = this.#wantFlags & req.flags;
    const maxPages = Math.min(0xffff, Math.ceil(this.#maxWrite / PAGE_SIZE));
    const n: Negotiated = {
      major: FUSE_KERNEL_VERSION,
      minor: Math.min(req.minor, FUSE_OUR_MINOR),
      kernelMinor: req.minor,
      flags,
      flagNames: initFlagNames(flags),
      maxWrite: this.#maxWrite,
      maxReadahead: Math.min(req.maxReadahead, this.#maxReadahead),
      maxPages,
      maxBackground: this.#maxBackground,
      congestionThreshold: this.#congestionThreshold,
      timeGran: this.#timeGran,
    };
    await this.#fs.init?.();
    writeInitOut(v, P, {
      major: n.major,
      minor: FUSE_OUR_MINOR,
      maxReadahead: n.maxReadahead,
      flags,
      maxBackground: n.maxBackground,
      congestionThreshold: n.congestionThreshold,
      maxWrite: n.maxWrite,
      timeGran: n.timeGran,
      maxPages: n.maxPages,
    });
    this.#negotiated = n;
    this.#initDone = true;
    this.#replyOk(call, INIT_OUT_SIZE);
    this.#ready.resolve(n);
    this.#log.debug("FUSE session initialized", {
      protocol: `${n.major}.${n.minor}`,
      kernel: `${req.major}.${req.minor}`,
      kernelFlags: initFlagNames(req.flags),
      flags: n.flagNames,
      maxWrite: n.maxWrite,
      maxReadahead: n.maxReadahead,
      maxPages: n.maxPages,
      maxBackground: n.maxBackground,
      congestionThreshold: n.congestionThreshold,
    });
  }

  // ---- replies -------------------------------------------------------------

  /** Sends the header plus `payloadLen` bytes already encoded at buf[16..]. */
  #replyOk(call: Call, payloadLen: number): void {
    if (call.replied) throw new Error(`Reply sent twice for request "${call.unique}"`);
    call.replied = true;
    const len = OUT_HEADER_SIZE + payloadLen;
    writeOutHeader(call.slot.view, 0, len, 0, call.unique);
    this.#write(call.slot.buf, len, call.opcode);
  }

  #replyError(call: Call, errnoValue: number): void {
    if (call.replied) throw new Error(`Reply sent twice for request "${call.unique}"`);
    call.replied = true;
    call.errno = errnoValue;
    this.#sendError(call.slot, call.unique, errnoValue);
  }

  #sendError(slot: Slot, unique: number, errnoValue: number): void {
    writeOutHeader(slot.view, 0, OUT_HEADER_SIZE, errnoValue, unique);
    this.#write(slot.buf, OUT_HEADER_SIZE, -1);
  }

  /** A data reply (READ): small data is copied after the header, large data is writev'd in place. */
  #replyData(call: Call, data: Uint8Array): void {
    if (call.replied) throw new Error(`Reply sent twice for request "${call.unique}"`);
    call.replied = true;
    const slot = call.slot;
    const size = data.byteLength;
    const len = OUT_HEADER_SIZE + size;
    writeOutHeader(slot.view, 0, len, 0, call.unique);
    if (size <= COPY_REPLY_LIMIT) {
      slot.buf.set(data, OUT_HEADER_SIZE);
      this.#write(slot.buf, len, call.opcode);
      return;
    }
    const iov = this.#iov;
    iov[0] = slot.addr;
    iov[1] = BigInt(OUT_HEADER_SIZE);
    iov[2] = pointerValue(data);
    iov[3] = BigInt(size);
    // SAFETY: iov[2] points into `data`, which the FS handed us and still
    // references; no JS (hence no GC) runs during the synchronous call.
    const r = libc().writev(this.#fd, this.#iovBytes, 2);
    this.#checkWrite(r, len, call.opcode);
  }

  #write(buf: Uint8Array<ArrayBuffer>, len: number, opcode: number): void {
    this.#checkWrite(libc().write(this.#fd, buf, BigInt(len)), len, opcode);
  }

  #checkWrite(r: number, len: number, opcode: number): void {
    if (r === len) return;
    if (r >= 0) {
      this.#log.error("Short write of a FUSE reply", { op: opName(opcode), wrote: r, len });
      return;
    }
    const e = errno();
    if (e === E.ENOENT) {
      // The kernel dropped the request (interrupted or aborted): normal.
      this.#log.debug("FUSE reply to a request the kernel no longer knows", { op: opName(opcode) });
    } else if (this.#ending || e === E.ENODEV) {
      this.#log.debug("FUSE reply after the connection ended", { op: opName(opcode), errno: e });
    } else {
      this.#log.error("Cannot write a FUSE reply", { op: opName(opcode), errno: e, len });
    }
  }
}
