/**
 * The device channel: request buffers, the read loop on a /dev/fuse fd, and
 * the writes that carry replies and notifications back to the kernel.
 *
 * Loop. The fd is O_NONBLOCK. `serve` reads synchronously until EAGAIN, then
 * awaits a nonblocking `poll(POLLIN)` (which runs off the JS thread) on the fd
 * and on an eventfd that `stop()` signals. errno is read only after the
 * synchronous calls. When a reply goes out while the loop sits in poll
 * (`afterReply`), the device is read again right away: the kernel often has
 * the next request queued already. read() errors: EAGAIN → poll; ENOENT (the
 * request was interrupted before we read it) and EINTR → read again; ENODEV
 * (the file system was unmounted) and ECONNABORTED (the connection was
 * aborted, with ABORT_ERROR) → clean end.
 *
 * Buffers. Each request is read into its own `Slot` from a pool of
 * `maxInFlight` buffers (the kernel refuses reads into a buffer smaller than
 * max_write + 80). Whoever handles a request owns its slot until it calls
 * `release`: WRITE data is a view into it, and the reply is encoded into the
 * same buffer (the request is fully decoded by then), which spares an
 * allocation per reply. When the pool is empty the loop stops reading until a
 * slot is released; the kernel keeps the rest queued.
 *
 * Writes. Header and payload go out in one write (or one writev for large
 * READ data, so the data is not copied), and the byte count is checked. A
 * write failing with ENOENT means the kernel already forgot the request
 * (interrupted or aborted): not an error. Notifications are written off the
 * JS thread, because the kernel may wait on requests this very loop has to
 * answer; the fd stays open until they return.
 *
 * @module
 */

import type { Logger } from "../log/mod.ts";
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
import { opName } from "./abi.ts";
import { DirentPacker, OUT_HEADER_SIZE, writeOutHeader } from "./reply.ts";

/** READ replies up to this size are copied after the header (one write) instead of writev'd. */
const COPY_REPLY_LIMIT = 16 * 1024;

/** A request buffer with its reusable views. */
export class Slot {
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

export interface ChannelOptions {
  /** Slots at most, i.e. requests handled at once. */
  maxInFlight: number;
  /** Bytes per slot. */
  bufferSize: number;
  logger: Logger;
}

/** Called with each request read: `n` bytes at the start of `slot.buf`. */
export type OnRequest = (slot: Slot, n: number) => void;

export class FuseChannel {
  readonly #fd: number;
  readonly #log: Logger;
  readonly #maxSlots: number;
  readonly #bufferSize: number;
  readonly #free: Slot[] = [];
  #allocated = 0;
  #slotWaiter: (() => void) | null = null;

  #onRequest: OnRequest = () => {};
  #wakeFd = -1;
  #polling = false;
  #draining = false;
  #stopping = false;
  #ending = false;
  #endReason: string | null = null;
  #loopError: unknown = null;
  readonly #notifying = new Set<Promise<number>>();
  readonly #pollfds = new Uint8Array(16);
  readonly #pollView = new DataView(this.#pollfds.buffer);
  readonly #iov = new BigUint64Array(4);
  readonly #iovBytes = new Uint8Array(this.#iov.buffer);

  constructor(fd: number, options: ChannelOptions) {
    this.#fd = fd;
    this.#log = options.logger;
    this.#maxSlots = options.maxInFlight;
    this.#bufferSize = options.bufferSize;
  }

  /**
   * Reads requests and hands each to `onRequest` until the device ends or
   * `stop()` is called; resolves with the reason ("unmounted", "eof",
   * "stopped"). Rejects if reading fails unexpectedly.
   */
  async serve(onRequest: OnRequest): Promise<string> {
    this.#onRequest = onRequest;
    this.#wakeFd = eventfd();
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

  /** Stops reading; `serve` resolves "stopped". */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    if (this.#wakeFd >= 0) eventfdSignal(this.#wakeFd);
    this.#slotWaiter?.();
  }

  /** From now on write failures are expected (the connection is going away). */
  end(): void {
    this.#ending = true;
  }

  /** Waits for notifications still being written, then closes the eventfd (and the fd). */
  async close(closeFd: boolean): Promise<void> {
    this.#ending = true;
    await Promise.allSettled([...this.#notifying]);
    try {
      if (closeFd) sysClose(this.#fd);
    } finally {
      if (this.#wakeFd >= 0) sysClose(this.#wakeFd);
      this.#wakeFd = -1;
    }
  }

  /** Gives a slot back to the pool; a loop waiting for one resumes. */
  release(slot: Slot): void {
    this.#free.push(slot);
    const w = this.#slotWaiter;
    if (w) {
      this.#slotWaiter = null;
      w();
    }
  }

  /**
   * Called after a reply went out while the loop waits in poll: the kernel
   * often has the next request queued already (readahead keeps several in
   * flight), and reading it now saves the round trip through the poll thread.
   */
  afterReply(): void {
    if (!this.#polling || this.#draining || this.#ending) return;
    try {
      if (this.#drain() === "end") eventfdSignal(this.#wakeFd);
    } catch (err) {
      this.#loopError = err;
      eventfdSignal(this.#wakeFd);
    }
  }

  /** Sends the header plus `payloadLen` bytes already encoded after it in `slot.buf`. */
  reply(slot: Slot, unique: number, payloadLen: number, opcode: number): void {
    const len = OUT_HEADER_SIZE + payloadLen;
    writeOutHeader(slot.view, 0, len, 0, unique);
    this.#write(slot.buf, len, opcode);
  }

  /** Sends a header-only reply carrying `errnoValue`. */
  replyError(slot: Slot, unique: number, errnoValue: number, opcode: number): void {
    writeOutHeader(slot.view, 0, OUT_HEADER_SIZE, errnoValue, unique);
    this.#write(slot.buf, OUT_HEADER_SIZE, opcode);
  }

  /** A data reply (READ): small data is copied after the header, large data is writev'd in place. */
  replyData(slot: Slot, unique: number, data: Uint8Array, opcode: number): void {
    const size = data.byteLength;
    const len = OUT_HEADER_SIZE + size;
    writeOutHeader(slot.view, 0, len, 0, unique);
    if (size <= COPY_REPLY_LIMIT) {
      slot.buf.set(data, OUT_HEADER_SIZE);
      this.#write(slot.buf, len, opcode);
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
    this.#checkWrite(r, len, opcode);
  }

  /** Writes a notification off the JS thread; false if the kernel refused it or the channel is ending. */
  async notify(b: Uint8Array<ArrayBuffer>): Promise<boolean> {
    if (this.#ending) return false;
    const pending = libc().writeOffThread(this.#fd, b, BigInt(b.byteLength));
    // The fd must stay open until the write returns: close() waits for these.
    this.#notifying.add(pending);
    try {
      const r = await pending;
      // `b` is used after the await, so it outlives the off-thread write.
      return r === b.byteLength;
    } finally {
      this.#notifying.delete(pending);
    }
  }

  /**
   * Reads and hands on requests until the device has none ("idle"), every
   * slot is busy ("full") or the channel ends ("end", see #endReason).
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
          this.#onRequest(slot, n);
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
    if (this.#allocated >= this.#maxSlots) return null;
    this.#allocated++;
    return new Slot(this.#bufferSize);
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
