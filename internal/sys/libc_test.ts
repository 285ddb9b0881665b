import assert from "node:assert/strict";
import {
  acceptUnix,
  AF_UNIX,
  close,
  connectUnix,
  E,
  eventfd,
  eventfdSignal,
  getCloexec,
  getFileFlags,
  listenUnix,
  MNT_DETACH,
  mount,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDONLY,
  O_RDWR,
  open,
  poll,
  POLLIN,
  read,
  readRaw,
  recvFd,
  sendFd,
  setCloexec,
  setNonBlocking,
  SOCK_CLOEXEC,
  SOCK_SEQPACKET,
  socketpair,
  SysError,
  umount2,
  write,
  writevRaw,
} from "./libc.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("open() throws a SysError with ENOENT when the path does not exist", () => {
  assert.throws(
    () => open("/nonexistent/s3csi-test", O_RDONLY),
    (err: unknown) =>
      err instanceof SysError && err.syscall === "open" && err.errno === E.ENOENT &&
      err.code === "ENOENT" && err.message.includes('"/nonexistent/s3csi-test"'),
  );
});

Deno.test("sendFd() and recvFd() pass an fd and its payload across a socketpair", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/data.txt`;
  await Deno.writeTextFile(file, "passed through SCM_RIGHTS");
  const [a, b] = socketpair();
  const fd = open(file, O_RDONLY | O_CLOEXEC);
  try {
    const payload = enc.encode(JSON.stringify({ target: "/mnt/x" }));
    assert.equal(sendFd(a, fd, payload), payload.byteLength);
    const buf = new Uint8Array(256);
    const got = recvFd(b, buf);
    assert.equal(got.bytes, payload.byteLength);
    assert.deepEqual(JSON.parse(dec.decode(buf.subarray(0, got.bytes))), { target: "/mnt/x" });
    assert.ok(got.fd >= 0 && got.fd !== fd);
    // The received fd is the same open file: it reads the content.
    const content = new Uint8Array(64);
    const n = read(got.fd, content);
    assert.equal(dec.decode(content.subarray(0, n)), "passed through SCM_RIGHTS");
    assert.equal(await Deno.readLink(`/proc/self/fd/${got.fd}`), file);
    close(got.fd);
  } finally {
    close(fd);
    close(a);
    close(b);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("recvFd() returns fd -1 when the message carries no fd", () => {
  const [a, b] = socketpair();
  try {
    write(a, enc.encode("plain"));
    const buf = new Uint8Array(16);
    const got = recvFd(b, buf);
    assert.equal(got.fd, -1);
    assert.equal(dec.decode(buf.subarray(0, got.bytes)), "plain");
  } finally {
    close(a);
    close(b);
  }
});

Deno.test("readRaw() returns -EAGAIN on an empty non-blocking socket", () => {
  const [a, b] = socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC);
  try {
    setNonBlocking(b);
    assert.ok((getFileFlags(b) & O_NONBLOCK) !== 0);
    assert.equal(readRaw(b, new Uint8Array(8)), -E.EAGAIN);
  } finally {
    close(a);
    close(b);
  }
});

Deno.test("writevRaw() sends its chunks as one message", () => {
  const [a, b] = socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC);
  try {
    const big = new Uint8Array(20000).fill(7);
    assert.equal(writevRaw(a, [enc.encode("head"), big.subarray(1)]), 4 + 19999);
    const buf = new Uint8Array(30000);
    assert.equal(read(b, buf), 20003);
    assert.equal(dec.decode(buf.subarray(0, 4)), "head");
    assert.equal(buf[4], 7);
    assert.equal(buf[20002], 7);
  } finally {
    close(a);
    close(b);
  }
});

Deno.test("poll() resolves with POLLIN once an eventfd is signalled", async () => {
  const efd = eventfd();
  try {
    const before = await poll([{ fd: efd, events: POLLIN }], 0);
    assert.equal(before[0]! & POLLIN, 0);
    const waiting = poll([{ fd: efd, events: POLLIN }], 10_000);
    eventfdSignal(efd);
    const after = await waiting;
    assert.equal(after[0]! & POLLIN, POLLIN);
  } finally {
    close(efd);
  }
});

Deno.test({
  name: "mount() and umount2() mount and detach a tmpfs",
  ignore: Deno.uid() !== 0,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      mount("s3csi-test", dir, "tmpfs", 0, "size=1m,mode=0700");
      try {
        const mounts = await Deno.readTextFile("/proc/self/mounts");
        assert.ok(mounts.includes(`s3csi-test ${dir} tmpfs`));
        await Deno.writeTextFile(`${dir}/f`, "x");
      } finally {
        umount2(dir, MNT_DETACH);
      }
      const after = await Deno.readTextFile("/proc/self/mounts");
      assert.ok(!after.includes(dir));
      assert.throws(
        () => umount2(dir, 0),
        (e: unknown) => e instanceof SysError && e.errno === E.EINVAL,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test(
  "open() with O_RDWR on /dev/fuse gives a usable fd",
  { ignore: Deno.uid() !== 0 },
  async () => {
    const fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    try {
      assert.equal(await Deno.readLink(`/proc/self/fd/${fd}`), "/dev/fuse");
    } finally {
      close(fd);
    }
  },
);

Deno.test("setCloexec() clears and sets FD_CLOEXEC so a child can inherit the fd", async () => {
  const fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  try {
    assert.equal(getCloexec(fd), true);
    setCloexec(fd, false);
    assert.equal(getCloexec(fd), false);
    const inherited = await new Deno.Command("sh", {
      args: ["-c", `readlink /proc/self/fd/${fd}`],
      stdout: "piped",
    }).output();
    assert.equal(dec.decode(inherited.stdout).trim(), "/dev/null");
    setCloexec(fd, true);
    assert.equal(getCloexec(fd), true);
    const closed = await new Deno.Command("sh", {
      args: ["-c", `readlink /proc/self/fd/${fd} || echo none`],
      stdout: "piped",
      stderr: "null",
    }).output();
    assert.equal(dec.decode(closed.stdout).trim(), "none");
  } finally {
    close(fd);
  }
});

/** The transparent huge page mode ("always", "madvise", "never"), or undefined without THP. */
function thpMode(): string | undefined {
  try {
    return /\[(\w+)\]/.exec(Deno.readTextFileSync("/sys/kernel/mm/transparent_hugepage/enabled"))
      ?.[1];
  } catch {
    return undefined;
  }
}

Deno.test({
  name: "adviseHugePages() marks a large buffer, a mapping of its own, for huge pages",
  ignore: thpMode() === undefined || thpMode() === "never",
  async fn() {
    // In a fresh process (see the child's note): the threshold set before any large allocation.
    const child = new URL("./testdata/huge_pages_child.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-lock", child],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.equal(r.small, false, "under one aligned huge page");
    assert.equal(r.threshold, true);
    assert.equal(r.advised, true);
    // Whether the kernel finds free 2 MiB pages right now is up to it; what s3csi controls is
    // that the buffer is a mapping of its own and carries the advice (VmFlags "hg").
    assert.ok(r.middleFlags, "the buffer is in no mapping");
    assert.ok(r.middleFlags.includes("hg"), `VmFlags of the buffer's mapping: ${r.middleFlags}`);
    assert.ok(r.middleSpan < 3 * r.size, "the buffer shares a large mapping");
    // Not carved out of the heap, where the advice would outlive the buffer.
    assert.equal(r.startName, "");
  },
});

Deno.test("listenUnix(), connectUnix() and acceptUnix() connect two raw sockets by path", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/s.sock`;
  assert.throws(
    () => connectUnix(path),
    (e: unknown) => e instanceof SysError && e.code === "ENOENT",
  );
  const listener = listenUnix(path);
  try {
    assert.equal(acceptUnix(listener), -1, "nothing pending yet");
    const client = connectUnix(path);
    const [revents] = await poll([{ fd: listener, events: POLLIN }], 5000);
    assert.ok(revents! & POLLIN);
    const server = acceptUnix(listener);
    assert.ok(server >= 0);
    assert.ok(getFileFlags(server) & O_NONBLOCK);
    assert.equal(write(client, enc.encode("hi")), 2);
    await poll([{ fd: server, events: POLLIN }], 5000);
    const buf = new Uint8Array(8);
    assert.equal(dec.decode(buf.subarray(0, read(server, buf))), "hi");
    close(client);
    close(server);
  } finally {
    close(listener);
  }
  await Deno.remove(path);
  const stale = listenUnix(path);
  close(stale);
  assert.throws(
    () => connectUnix(path),
    (e: unknown) => e instanceof SysError && e.errno === E.ECONNREFUSED,
  );
  assert.throws(
    () => listenUnix(`${dir}/${"x".repeat(120)}`),
    (e: unknown) => e instanceof SysError && e.code === "ENAMETOOLONG",
  );
  await Deno.remove(dir, { recursive: true });
});
