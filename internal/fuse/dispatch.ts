/**
 * Dispatch: each decoded request to its `FileSystem` call
 * (internal/fs/api.ts), and the result to its reply.
 *
 * What is answered. The opcode table says which requests get no reply
 * (FORGET and BATCH_FORGET are forwarded to `fs.forget`, INTERRUPT aborts the
 * signal of the request it names, NOTIFY_REPLY is dropped); every other
 * request is answered exactly once: a handler that neither replied nor threw
 * is answered EIO (and logged) in its `finally`.
 *
 * What is served. An operation of the `FileSystem` contract goes to the file
 * system, which decides its own refusals: SYMLINK and LINK go to the optional
 * `fs.symlink` / `fs.link`, and are answered ENOSYS when the file system
 * leaves them out. Everything the contract lacks (FSYNCDIR, ACCESS, READLINK,
 * xattrs, locks, FALLOCATE, LSEEK, COPY_FILE_RANGE, IOCTL, POLL, BMAP,
 * TMPFILE, STATX, ...) is answered ENOSYS without a handler; the kernel then
 * falls back or stops asking. CREATE is mknod + open in one round trip.
 *
 * Every answered request is counted once, in its `finally`, in the FUSE
 * metrics (opcode, errno, latency).
 *
 * Recording. With a `SessionRecorder` (the takeover journal), the
 * dispatcher reports what the kernel comes to hold: each node ID an entry
 * reply hands out (LOOKUP, MKNOD, MKDIR, CREATE and the READDIRPLUS entries
 * the reply carries, "." and ".." excepted: the kernel takes no reference
 * for them), each FORGET, each handle opened and released; and it calls
 * `flush()` before every reply, so nothing reaches the kernel that the
 * record lacks. A RELEASE is recorded as it arrives: the kernel has
 * dropped the handle by then, whatever the answer.
 *
 * Errors. An `FsError` gives its errno. Anything else gives EIO and an error
 * log naming the opcode; a handler that fails after its request was
 * interrupted gets EINTR. A malformed request is answered EIO, an unknown
 * opcode ENOSYS, unless the opcode is one the kernel expects no reply to.
 *
 * @module
 */

import {
  type DirEntry,
  type Entry,
  Errno,
  type FileHandle,
  type FileSystem,
  FsError,
  type Ino,
  type RequestContext,
  S_IFDIR,
  S_IFMT,
  S_IFREG,
  type SetattrChanges,
} from "../fs/api.ts";
import type { Logger } from "../log/mod.ts";
import { errnoName } from "../errno.ts";
import {
  fuseReadBytes,
  fuseRequestDuration,
  fuseRequests,
  fuseWrittenBytes,
} from "../metrics/mod.ts";
import { errorMessage } from "../errors/mod.ts";
import { FATTR, FUSE_FSYNC_FDATASYNC, Op, OPCODE_BY_CODE, opName } from "./abi.ts";
import type { FuseChannel, Slot } from "./channel.ts";
import type { DecodeError, InitRequest, Request } from "./request.ts";
import {
  type InitOut,
  OUT_HEADER_SIZE,
  writeAttrOut,
  writeEntryOut,
  writeInitOut,
  writeOpenOut,
  writeStatfsOut,
  writeWriteOut,
} from "./reply.ts";

/** The answer to INIT: the init_out to send (then `onSent`, once it is written), or an errno. */
export type InitReply = { out: InitOut; onSent?: () => void } | { errno: number };

/** How INIT and DESTROY reach the session, which owns the connection's state. */
export interface Lifecycle {
  init(req: InitRequest): Promise<InitReply>;
  /** DESTROY: the file system's `destroy`, at most once per session. */
  destroy(): Promise<void>;
}

/**
 * What the kernel holds, reported as it changes (see the module note):
 * what a server that takes over the connection must know.
 */
export interface SessionRecorder {
  /** `parent`/`name` answers with node `ino` of this kind: one more kernel reference to it. */
  entry(parent: Ino, name: string, ino: Ino, kind: "file" | "dir"): void;
  forget(ino: Ino, nlookup: number): void;
  /** A handle handed out; `version`: what a reader pinned (`fs.pinnedVersion`). */
  opened(fh: FileHandle, ino: Ino, flags: number, version: string | undefined): void;
  released(fh: FileHandle): void;
  /** Makes what was reported durable; called before every reply. */
  flush(): void;
}

function kindOf(e: Entry): "file" | "dir" {
  return (e.attr.mode & S_IFMT) === S_IFDIR ? "dir" : "file";
}

/** Opcodes of the `FileSystem` contract's required operations (and INIT, DESTROY). */
const SERVED: readonly number[] = [
  Op.LOOKUP,
  Op.GETATTR,
  Op.SETATTR,
  Op.MKNOD,
  Op.MKDIR,
  Op.UNLINK,
  Op.RMDIR,
  Op.RENAME,
  Op.RENAME2,
  Op.OPEN,
  Op.READ,
  Op.WRITE,
  Op.STATFS,
  Op.RELEASE,
  Op.FSYNC,
  Op.FLUSH,
  Op.INIT,
  Op.OPENDIR,
  Op.READDIR,
  Op.READDIRPLUS,
  Op.RELEASEDIR,
  Op.CREATE,
  Op.DESTROY,
];

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

export class Dispatcher {
  readonly #fs: FileSystem;
  readonly #channel: FuseChannel;
  readonly #lifecycle: Lifecycle;
  readonly #log: Logger;
  readonly #served: ReadonlySet<number>;
  readonly #inflight = new Map<number, Call>();
  readonly #rec: SessionRecorder | undefined;
  #idleWaiter: (() => void) | null = null;

  constructor(
    fs: FileSystem,
    channel: FuseChannel,
    lifecycle: Lifecycle,
    log: Logger,
    recorder?: SessionRecorder,
  ) {
    this.#fs = fs;
    this.#rec = recorder;
    this.#channel = channel;
    this.#lifecycle = lifecycle;
    this.#log = log;
    const served = new Set(SERVED);
    if (fs.symlink) served.add(Op.SYMLINK);
    if (fs.link) served.add(Op.LINK);
    this.#served = served;
  }

  /** Requests being handled right now. */
  get active(): number {
    return this.#inflight.size;
  }

  /** Resolves once no request is being handled. */
  idle(): Promise<void> {
    if (this.#inflight.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => (this.#idleWaiter = resolve));
  }

  /** Aborts the signal of every request being handled. */
  abortAll(reason: string): void {
    for (const call of this.#inflight.values()) call.abort(reason);
  }

  /** Answers, forwards or starts handling one request; the slot is released once it is done with. */
  dispatch(slot: Slot, req: Request): void {
    const opcode = req.opcode;
    if (OPCODE_BY_CODE.get(opcode)?.noReply) {
      this.#noReply(req);
      this.#channel.release(slot);
      return;
    }
    if (!this.#served.has(opcode)) {
      this.refuse(slot, req, Errno.ENOSYS);
      return;
    }
    const call = new Call(slot, req.unique, opcode, req.uid, req.gid, req.pid, performance.now());
    this.#inflight.set(req.unique, call);
    this.#handle(call, req);
  }

  /** Answers `req` with `errnoValue` without reaching the file system. */
  refuse(slot: Slot, req: Request, errnoValue: number): void {
    this.#rec?.flush();
    this.#channel.replyError(slot, req.unique, errnoValue, req.opcode);
    if (this.#log.enabled("debug")) {
      this.#log.debug("FUSE request", {
        op: opName(req.opcode),
        nodeid: req.nodeid,
        unique: req.unique,
        errno: errnoValue,
      });
    }
    this.#channel.release(slot);
  }

  /** A request that could not be decoded: answered EIO (ENOSYS if unknown) when it expects an answer. */
  malformed(slot: Slot, err: DecodeError): void {
    const op = err.opcode;
    if (err.kind === "UnknownOpcode") {
      this.#log.debug("Unknown FUSE opcode", { opcode: op, unique: err.unique });
    } else {
      this.#log.warn("Malformed FUSE request", { kind: err.kind, error: err.message });
    }
    const silent = op !== undefined && OPCODE_BY_CODE.get(op)?.noReply === true;
    if (err.unique !== undefined && !silent) {
      const e = err.kind === "UnknownOpcode" ? Errno.ENOSYS : Errno.EIO;
      this.#rec?.flush();
      this.#channel.replyError(slot, err.unique, e, op ?? 0);
    }
    this.#channel.release(slot);
  }

  #noReply(req: Request): void {
    try {
      if (req.op === "FORGET") {
        this.#rec?.forget(req.nodeid, req.nlookup);
        this.#fs.forget(req.nodeid, req.nlookup);
      } else if (req.op === "BATCH_FORGET") {
        for (const f of req.forgets) {
          this.#rec?.forget(f.nodeid, f.nlookup);
          this.#fs.forget(f.nodeid, f.nlookup);
        }
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
      const seconds = (performance.now() - call.started) / 1000;
      const op = opName(call.opcode);
      fuseRequests.inc({ opcode: op, errno: call.errno === 0 ? "0" : errnoName(call.errno) });
      fuseRequestDuration.observe({ opcode: op }, seconds);
      if (this.#log.enabled("debug")) {
        this.#log.debug("FUSE request", {
          op,
          nodeid: req.nodeid,
          unique: call.unique,
          errno: call.errno,
          ms: Math.round(seconds * 1e6) / 1000,
        });
      }
      this.#inflight.delete(call.unique);
      this.#channel.release(call.slot);
      this.#channel.afterReply();
      if (this.#inflight.size === 0 && this.#idleWaiter) {
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
        const out = data.byteLength > req.size ? data.subarray(0, req.size) : data;
        this.#replyData(call, out);
        fuseReadBytes.inc(out.byteLength);
        return;
      }
      case "WRITE": {
        const n = await fs.write(call, req.nodeid, req.fh, req.offset, req.data);
        this.#replyOk(call, writeWriteOut(v, P, n));
        fuseWrittenBytes.inc(n);
        return;
      }
      case "LOOKUP": {
        const e = await fs.lookup(call, req.nodeid, req.name);
        this.#entry(req.nodeid, req.name, e);
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
        this.#opened(o.fh, req.nodeid, req.flags);
        this.#replyOk(call, writeOpenOut(v, P, o));
        return;
      }
      case "READDIR":
      case "READDIRPLUS": {
        const plus = req.op === "READDIRPLUS";
        const room = Math.min(req.size, call.slot.buf.byteLength - P);
        const packer = call.slot.packer.reset(P, room, plus);
        const rec = this.#rec;
        const parent = req.nodeid;
        const add = plus && rec
          ? (e: DirEntry) => {
            if (!packer.add(e)) return false;
            if (e.entry && e.name !== "." && e.name !== "..") this.#entry(parent, e.name, e.entry);
            return true;
          }
          : (e: DirEntry) => packer.add(e);
        await fs.readdir(call, req.nodeid, req.fh, req.offset, plus, add);
        this.#replyOk(call, packer.length);
        return;
      }
      case "FLUSH":
        await fs.flush(call, req.nodeid, req.fh);
        this.#replyOk(call, 0);
        return;
      case "RELEASE":
        this.#rec?.released(req.fh);
        await fs.release(call, req.nodeid, req.fh, req.flags);
        this.#replyOk(call, 0);
        return;
      case "RELEASEDIR":
        this.#rec?.released(req.fh);
        await fs.releasedir(call, req.nodeid, req.fh);
        this.#replyOk(call, 0);
        return;
      case "FSYNC":
        await fs.fsync(call, req.nodeid, req.fh, (req.fsyncFlags & FUSE_FSYNC_FDATASYNC) !== 0);
        this.#replyOk(call, 0);
        return;
      case "MKNOD": {
        const e = await fs.mknod(call, req.nodeid, req.name, req.mode, req.umask);
        this.#entry(req.nodeid, req.name, e);
        this.#replyOk(call, writeEntryOut(v, P, e));
        return;
      }
      case "MKDIR": {
        const e = await fs.mkdir(call, req.nodeid, req.name, req.mode, req.umask);
        this.#entry(req.nodeid, req.name, e);
        this.#replyOk(call, writeEntryOut(v, P, e));
        return;
      }
      case "SYMLINK": {
        const e = await fs.symlink!(call, req.nodeid, req.name, req.target);
        this.#entry(req.nodeid, req.name, e);
        this.#replyOk(call, writeEntryOut(v, P, e));
        return;
      }
      case "LINK": {
        const e = await fs.link!(call, req.oldnodeid, req.nodeid, req.name);
        this.#entry(req.nodeid, req.name, e);
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
      case "INIT": {
        const answer = await this.#lifecycle.init(req);
        if ("errno" in answer) {
          this.#replyError(call, answer.errno);
          return;
        }
        this.#replyOk(call, writeInitOut(v, P, answer.out));
        answer.onSent?.();
        return;
      }
      case "DESTROY":
        await this.#lifecycle.destroy();
        this.#replyOk(call, 0);
        return;
      default:
        // dispatch() lets through only the opcodes served above; reaching here is a bug.
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
    this.#entry(parent, name, entry);
    this.#opened(opened.fh, entry.ino, flags);
    const v = call.slot.view;
    const n = writeEntryOut(v, OUT_HEADER_SIZE, entry);
    this.#replyOk(call, n + writeOpenOut(v, OUT_HEADER_SIZE + n, opened));
  }

  #entry(parent: Ino, name: string, e: Entry): void {
    if (e.ino !== 0) this.#rec?.entry(parent, name, e.ino, kindOf(e));
  }

  #opened(fh: FileHandle, ino: Ino, flags: number): void {
    this.#rec?.opened(fh, ino, flags, this.#fs.pinnedVersion?.(fh));
  }

  #replyOk(call: Call, payloadLen: number): void {
    this.#markReplied(call);
    this.#channel.reply(call.slot, call.unique, payloadLen, call.opcode);
  }

  #replyData(call: Call, data: Uint8Array): void {
    this.#markReplied(call);
    this.#channel.replyData(call.slot, call.unique, data, call.opcode);
  }

  #replyError(call: Call, errnoValue: number): void {
    this.#markReplied(call);
    call.errno = errnoValue;
    this.#channel.replyError(call.slot, call.unique, errnoValue, call.opcode);
  }

  #markReplied(call: Call): void {
    if (call.replied) throw new Error(`Reply sent twice for request "${call.unique}"`);
    call.replied = true;
    this.#rec?.flush();
  }
}
