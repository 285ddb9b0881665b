/**
 * The FUSE session: serves a `FileSystem` (internal/fs/api.ts) on a
 * /dev/fuse fd, from the kernel's INIT to the unmount.
 *
 * It puts the parts together: the channel (channel.ts) reads requests and
 * writes replies, the decoder (request.ts) turns bytes into requests, INIT
 * negotiation (init.ts) decides what the connection speaks, and the
 * dispatcher (dispatch.ts) calls the file system and encodes its answers.
 * The session keeps what belongs to the connection as a whole:
 *
 * - Lifecycle. `run()` serves until the file system is unmounted or `stop()`
 *   is called, then aborts the requests still running, waits for them, calls
 *   `fs.destroy()` once (unless DESTROY already did) and closes the fd.
 *   `ready` resolves once INIT is answered.
 * - Hand-over. `handOver()` ends the session for a successor: no new
 *   request is read, those read are answered, and the file system is not
 *   destroyed; the calls the kernel queues meanwhile go to the successor.
 * - Takeover. With `resume`, the session serves a connection another server
 *   initialized (on a clone of its device fd, `cloneFuseFd`): the kernel
 *   sends no second INIT, so the values that server negotiated are used as
 *   they are, and requests are served from the first one read.
 * - Recording. With a `recorder` (the takeover journal), INIT's values are
 *   recorded before INIT is answered, and the dispatcher records what each
 *   reply hands the kernel (dispatch.ts), so that a successor can resume.
 * - Admission. Before INIT the kernel sends nothing else; a request that
 *   claims otherwise is answered EIO. allow_root: the kernel knows only
 *   allow_other, so with `allowRoot` the mount is made with allow_other and
 *   the session refuses, with EACCES, requests from uids other than the mount
 *   owner and root (the kernel's own requests, and those that get no reply,
 *   pass).
 * - Notifications. `invalidateInode` / `invalidateEntry` push cache
 *   invalidations to the kernel, for changes made behind its back (e.g. in
 *   S3); they are written off the JS thread (see channel.ts). Nothing in the
 *   product calls them yet (the S3 file system does not watch the bucket);
 *   the real-mount test keeps them working.
 *
 * None of the file system's policy lives here: which operations it refuses,
 * and with what errno, is its own (SYMLINK and LINK reach `fs.symlink` and
 * `fs.link`, ENOSYS when it has none; see dispatch.ts).
 *
 * @module
 */

import { Errno, type FileSystem, type Ino } from "../fs/api.ts";
import { log as rootLog, type Logger } from "../log/mod.ts";
import { E } from "../sys/libc.ts";
import { initFlagNames, Op, OPCODE_BY_CODE } from "./abi.ts";
import { FuseChannel, type Slot } from "./channel.ts";
import { Dispatcher, type InitReply, type Lifecycle, type SessionRecorder } from "./dispatch.ts";
import { type InitOffer, initOffer, type InitOptions, negotiate, type Negotiated } from "./init.ts";
import { encodeInvalEntry, encodeInvalInode } from "./reply.ts";
import { DecodeError, decodeRequest, type InitRequest, type Request } from "./request.ts";

export interface SessionOptions extends InitOptions {
  /** Requests handled at once, each with its own buffer of maxWrite + 4 KiB. Default 32. */
  maxInFlight?: number;
  /** Refuse requests from uids other than `ownerUid` and 0 (allow_root emulation). */
  allowRoot?: boolean;
  /** The mount owner for `allowRoot`. Default: the process uid. */
  ownerUid?: number;
  /** Close the fd when the session ends. Default true. */
  closeFd?: boolean;
  /** Logger; default `log.with({ component: "fuse" })`. */
  logger?: Logger;
  /** Take over a connection already initialized with these values (no INIT will come). */
  resume?: Negotiated;
  /** Where what the kernel holds is recorded, for a successor (see dispatch.ts). */
  recorder?: SessionRecorder & { init(n: Negotiated): void };
}

/** Request buffers hold max_write plus headers; 4 KiB covers in_header + write_in with room to spare. */
const BUFFER_HEADROOM = 4096;

/** Requests the kernel sends on its own behalf: exempt from the allow_root filter. */
const KERNEL_OWN = new Set<number>([Op.INIT, Op.DESTROY, Op.RELEASE, Op.RELEASEDIR]);

export class FuseSession {
  readonly #fs: FileSystem;
  readonly #log: Logger;
  readonly #offer: InitOffer;
  readonly #ownerUid: number | undefined;
  readonly #closeFd: boolean;
  readonly #channel: FuseChannel;
  readonly #dispatcher: Dispatcher;
  readonly #resume: Negotiated | undefined;
  readonly #recorder: SessionOptions["recorder"];

  #negotiated: Negotiated | null = null;
  #destroyed = false;
  #handingOver = false;
  #handedOver = false;
  #ending = false;
  #running: Promise<void> | null = null;
  readonly #ready = Promise.withResolvers<Negotiated>();

  constructor(fd: number, fs: FileSystem, options: SessionOptions = {}) {
    this.#fs = fs;
    this.#log = options.logger ?? rootLog.with({ component: "fuse" });
    this.#offer = initOffer(options);
    this.#ownerUid = options.allowRoot ? (options.ownerUid ?? Deno.uid() ?? 0) : undefined;
    this.#closeFd = options.closeFd ?? true;
    this.#resume = options.resume;
    this.#recorder = options.recorder;
    // The kernel sends WRITEs of up to the max_write it was given, by whichever server.
    const maxWrite = Math.max(this.#offer.maxWrite, options.resume?.maxWrite ?? 0);
    this.#channel = new FuseChannel(fd, {
      maxInFlight: Math.max(1, options.maxInFlight ?? 32),
      bufferSize: maxWrite + BUFFER_HEADROOM,
      logger: this.#log,
    });
    const lifecycle: Lifecycle = {
      init: (req) => this.#init(req),
      destroy: () => this.#destroyFs(),
    };
    this.#dispatcher = new Dispatcher(fs, this.#channel, lifecycle, this.#log, options.recorder);
    // `ready` may have no listener; its rejection must not count as unhandled.
    this.#ready.promise.catch(() => {});
  }

  /**
   * Resolves with the INIT outcome once the kernel's INIT is answered (the
   * mount is usable from then on); rejects if the session ends first.
   */
  get ready(): Promise<Negotiated> {
    return this.#ready.promise;
  }

  /** What the connection speaks, once INIT is answered (or taken over); what a successor resumes with. */
  get negotiated(): Negotiated | null {
    return this.#negotiated;
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
    if (this.#negotiated === null || this.#ending) return false;
    return await this.#channel.notify(encodeInvalInode(ino, offset, length));
  }

  /**
   * Tells the kernel to forget the dentry `name` in directory `parent` (and
   * so look it up again). Resolves false if the kernel refused (typically:
   * not cached). Written off the JS thread, see `invalidateInode`.
   */
  async invalidateEntry(parent: Ino, name: string): Promise<boolean> {
    if (this.#negotiated === null || this.#ending) return false;
    return await this.#channel.notify(encodeInvalEntry(parent, name));
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
    this.#channel.stop();
  }

  /**
   * Ends the session for a successor (a planned hand-over): stops reading,
   * lets every request already read finish and be answered, and closes the
   * fd without `fs.destroy()`, so the file system's state stays as the
   * journal describes it. Requests the kernel queues meanwhile wait for the
   * successor. Resolves when the session has ended; if the mount went
   * first, the session ends as `run()` does.
   */
  /** Whether the session ended by `handOver()` (rather than an unmount or `stop()`). */
  get handedOver(): boolean {
    return this.#handedOver;
  }

  handOver(): Promise<void> {
    this.#handingOver = true;
    this.#channel.stop();
    return this.run();
  }

  async #run(): Promise<void> {
    let failure: unknown = null;
    let why = "stopped";
    try {
      if (this.#resume) await this.#takeOver(this.#resume);
      why = await this.#channel.serve((slot, n) => this.#onRequest(slot, n));
    } catch (err) {
      failure = err;
      why = "failed";
    }
    this.#ending = true;
    this.#channel.end();
    this.#ready.reject(new Error(`FUSE session ended before INIT: ${why}`, { cause: failure }));
    this.#log.debug("FUSE session ending", { reason: why, inFlight: this.#dispatcher.active });
    if (this.#handingOver && why === "stopped") {
      // Their replies still go out: the kernel forgets no call of a hand-over.
      await this.#dispatcher.idle();
      this.#handedOver = true;
    } else {
      this.#dispatcher.abortAll("FUSE session ended");
      await this.#dispatcher.idle();
      await this.#destroyFs();
    }
    await this.#channel.close(this.#closeFd);
    if (failure !== null) throw failure;
  }

  #onRequest(slot: Slot, n: number): void {
    const req = decodeRequest(slot.buf, n, slot.view);
    if (req instanceof DecodeError) {
      this.#dispatcher.malformed(slot, req);
      return;
    }
    const refusal = this.#admit(req);
    if (refusal === undefined) this.#dispatcher.dispatch(slot, req);
    else this.#dispatcher.refuse(slot, req, refusal);
  }

  /** The errno that refuses `req` at the door, if any. */
  #admit(req: Request): number | undefined {
    const opcode = req.opcode;
    if (OPCODE_BY_CODE.get(opcode)?.noReply) return undefined;
    if (this.#negotiated === null && opcode !== Op.INIT) return Errno.EIO;
    const owner = this.#ownerUid;
    if (owner !== undefined && req.uid !== owner && req.uid !== 0 && !KERNEL_OWN.has(opcode)) {
      return Errno.EACCES;
    }
    return undefined;
  }

  async #init(req: InitRequest): Promise<InitReply> {
    const answer = negotiate(this.#offer, req);
    const kernel = `${req.major}.${req.minor}`;
    if (answer.kind === "newer") {
      this.#log.info("Kernel offered a newer FUSE major version, answered with ours", { kernel });
      return { out: answer.out };
    }
    if (answer.kind === "too_old") {
      this.#log.error("Kernel FUSE protocol is too old", { kernel, required: answer.required });
      return { errno: E.EPROTO };
    }
    await this.#fs.init?.();
    const n = answer.negotiated;
    // Flushed before the reply goes out, like every record.
    this.#recorder?.init(n);
    const onSent = () => {
      this.#negotiated = n;
      this.#ready.resolve(n);
      this.#log.debug("FUSE session initialized", {
        protocol: `${n.major}.${n.minor}`,
        kernel,
        kernelFlags: initFlagNames(req.flags),
        flags: n.flagNames,
        maxWrite: n.maxWrite,
        maxReadahead: n.maxReadahead,
        maxPages: n.maxPages,
        maxBackground: n.maxBackground,
        congestionThreshold: n.congestionThreshold,
      });
    };
    return { out: answer.out, onSent };
  }

  async #takeOver(n: Negotiated): Promise<void> {
    await this.#fs.init?.();
    this.#negotiated = n;
    this.#ready.resolve(n);
    this.#log.info("FUSE session took over a running connection", {
      protocol: `${n.major}.${n.minor}`,
      flags: n.flagNames,
      maxWrite: n.maxWrite,
    });
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
}
