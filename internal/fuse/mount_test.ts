/**
 * Real-mount tests: the session serves an in-memory file system on a temp
 * dir through the kernel, and real tools run against it in child processes.
 * The test process serves the mount, so it never touches the mount path
 * synchronously (that would block the loop that must answer).
 *
 * Needs root and /dev/fuse; skipped otherwise.
 */
import assert from "node:assert/strict";
import { type Entry, Errno, FsError, ROOT_INO } from "../fs/api.ts";
import { setSink, type Sink } from "../log/mod.ts";
import {
  checkMount,
  cloneFuseFd,
  findMount,
  isMountPoint,
  mountFuse,
  type MountFuseOptions,
  parseMountInfo,
  serveFd,
  tuneReadahead,
  unmount,
} from "./mount.ts";
import { FuseSession, type SessionOptions } from "./session.ts";
import { MemFs } from "./testing/memfs.ts";
import { close as sysClose } from "../sys/libc.ts";

const canMount = Deno.uid() === 0 && (() => {
  try {
    Deno.statSync("/dev/fuse");
    return true;
  } catch {
    return false;
  }
})();

const dec = new TextDecoder();

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function sh(cmd: string): Promise<Result> {
  const out = await new Deno.Command("sh", { args: ["-c", cmd], stdout: "piped", stderr: "piped" })
    .output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function ok(cmd: string): Promise<string> {
  const r = await sh(cmd);
  assert.equal(r.code, 0, `"${cmd}" failed: ${r.stderr}`);
  return r.stdout;
}

/** Waits (up to 10 s) for a condition the session reaches asynchronously. */
async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), `timed out waiting until ${what}`);
}

interface Mounted {
  dir: string;
  fs: MemFs;
  session: FuseSession;
  running: Promise<void>;
}

async function withMount(
  fn: (m: Mounted) => Promise<void>,
  options: { mount?: Partial<MountFuseOptions>; session?: SessionOptions; fs?: MemFs } = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "s3csi-fuse-test-" });
  const fs = options.fs ?? new MemFs();
  const fd = await mountFuse({
    target: dir,
    fsname: "memfs",
    subtype: "memfs",
    defaultPermissions: true,
    ...options.mount,
  });
  const session = new FuseSession(fd, fs, options.session);
  const running = session.run();
  try {
    await fn({ dir, fs, session, running });
  } finally {
    unmount(dir, { lazy: true });
    await running;
    await Deno.remove(dir, { recursive: true });
  }
}

const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, ignore: !canMount, fn });

test("FuseSession takes over a live connection on a clone: no INIT, no ENOTCONN, a waiting call answered by the successor", async () => {
  const dir = await Deno.makeTempDir({ prefix: "s3csi-fuse-test-" });
  const fs = new MemFs();
  fs.addFile(ROOT_INO, "a.txt", new TextEncoder().encode("before\n"));
  const keeper = await mountFuse({ target: dir, fsname: "memfs", subtype: "memfs" });
  try {
    // The first server works on a clone, as a mount server does; the keeper fd only keeps the connection.
    const first = new FuseSession(await serveFd(cloneFuseFd(keeper)), fs);
    const firstRun = first.run();
    const negotiated = await first.ready;
    assert.equal(await ok(`cat ${dir}/a.txt`), "before\n");
    first.stop(); // the server goes away; its fd is closed, the keeper's is not
    await firstRun;
    // A call made while no server reads waits in the kernel instead of failing.
    let answered = false;
    const waiting = sh(`cat ${dir}/a.txt && ls ${dir}`).finally(() => (answered = true));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(answered, false, "the call waits for a server");
    const second = new FuseSession(await serveFd(cloneFuseFd(keeper)), fs, { resume: negotiated });
    const secondRun = second.run();
    assert.deepEqual(await second.ready, negotiated);
    const r = await waiting;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "before\na.txt\n");
    await ok(`echo after > ${dir}/b.txt`);
    assert.equal(await ok(`cat ${dir}/b.txt`), "after\n");
    assert.equal(await checkMount(dir), "ok");
    unmount(dir, { lazy: true });
    await secondRun;
  } finally {
    unmount(dir, { lazy: true });
    sysClose(keeper);
    await Deno.remove(dir, { recursive: true });
  }
});

test("FuseSession serves ls -l, cat and stat on a real mount", async () => {
  await withMount(async ({ dir, fs }) => {
    fs.addFile(ROOT_INO, "hello.txt", new TextEncoder().encode("hello world\n"));
    const ls = await ok(`ls -l ${dir}`);
    assert.match(ls, /-rw-r--r-- 1 root root 12 .* hello\.txt/);
    assert.equal(await ok(`cat ${dir}/hello.txt`), "hello world\n");
    assert.equal(await ok(`stat -c '%s %a %F %h' ${dir}/hello.txt`), "12 644 regular file 1\n");
    assert.match(await ok(`df ${dir}`), /memfs/);
    assert.equal(await checkMount(dir), "ok");
    assert.ok(await isMountPoint(dir));
    const m = await findMount(dir);
    assert.equal(m?.fstype, "fuse.memfs");
    assert.equal(m?.source, "memfs");
  });
});

test("FuseSession handles writes, dd, mkdir, mv and rm from real tools", async () => {
  const src = await Deno.makeTempFile();
  try {
    await ok(`dd if=/dev/urandom of=${src} bs=1M count=5 status=none`);
    await withMount(async ({ dir, fs }) => {
      await ok(`echo abc > ${dir}/f.txt && echo def >> ${dir}/f.txt`);
      assert.equal(await ok(`cat ${dir}/f.txt`), "abc\ndef\n");
      await ok(`dd if=${src} of=${dir}/big bs=1M status=none`);
      await ok(`cmp ${src} ${dir}/big`);
      await ok(`dd if=${src} of=${dir}/big bs=4k skip=3 seek=5 count=2 conv=notrunc status=none`);
      await ok(`cmp -n 20480 ${src} ${dir}/big`);
      await ok(`dd if=${dir}/big of=/dev/null bs=1M iflag=direct status=none`);
      await ok(`mkdir ${dir}/sub && mv ${dir}/f.txt ${dir}/sub/g.txt`);
      assert.equal(await ok(`cat ${dir}/sub/g.txt`), "abc\ndef\n");
      assert.equal(await ok(`ls ${dir}`), "big\nsub\n");
      await ok(`rm ${dir}/sub/g.txt && rmdir ${dir}/sub && rm ${dir}/big`);
      assert.equal(await ok(`ls -A ${dir}`), "");
      const r = await sh(`rmdir ${dir}/nope`);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /No such file or directory/);
      await ok(`truncate -s 100 ${dir}/t && stat -c %s ${dir}/t`);
      assert.equal(fs.nodes.size >= 1, true);
    });
  } finally {
    await Deno.remove(src);
  }
});

test("FuseSession lists a directory of 5,000 entries completely", async () => {
  await withMount(async ({ dir, fs }) => {
    const big = fs.nodes.size + 1;
    await ok(`mkdir ${dir}/many`);
    assert.ok(fs.nodes.has(big));
    const expected: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const n = `entry-${String(i).padStart(4, "0")}-${"x".repeat(i % 40)}`;
      expected.push(n);
      fs.addFile(big, n);
    }
    expected.sort();
    const plain = (await ok(`ls -1 -f ${dir}/many`)).split("\n").filter((l) => l !== "");
    assert.deepEqual(plain.filter((n) => n !== "." && n !== "..").sort(), expected);
    assert.equal(plain.length, 5002, "no entry listed twice");
    const long = (await ok(`ls -l ${dir}/many`)).split("\n").filter((l) => l.startsWith("-"));
    assert.equal(long.length, 5000);
    assert.equal(await ok(`find ${dir}/many -type f | wc -l`), "5000\n");
    // Dropping the dentry cache makes the kernel forget what it looked up.
    await ok("sync; echo 2 > /proc/sys/vm/drop_caches");
    await waitFor(() => fs.forgets > 0, "the kernel sends FORGETs");
  });
});

/** A file system that refuses links itself, as the S3 one does. */
class NoLinksFs extends MemFs {
  symlink(): Promise<Entry> {
    return Promise.reject(new FsError(Errno.EPERM, "no links here"));
  }
  link(): Promise<Entry> {
    return Promise.reject(new FsError(Errno.EPERM, "no links here"));
  }
}

test("FuseSession leaves symlink and link to the file system: ENOSYS without, its errno with", async () => {
  // The kernel turns ENOSYS for LINK into EPERM: link(2) does not fail with ENOSYS.
  const cases = [
    { fs: new MemFs(), symlink: /Function not implemented/, link: /Operation not permitted/ },
    { fs: new NoLinksFs(), symlink: /Operation not permitted/, link: /Operation not permitted/ },
  ];
  for (const c of cases) {
    await withMount(async ({ dir, fs }) => {
      fs.addFile(ROOT_INO, "f");
      const sym = await sh(`ln -s f ${dir}/sym`);
      assert.notEqual(sym.code, 0);
      assert.match(sym.stderr, c.symlink);
      const hard = await sh(`ln ${dir}/f ${dir}/hard`);
      assert.notEqual(hard.code, 0);
      assert.match(hard.stderr, c.link);
    }, { fs: c.fs });
  }
});

test("FuseSession answers xattrs as unsupported", async () => {
  await withMount(async ({ dir, fs }) => {
    fs.addFile(ROOT_INO, "f");
    const py = (code: string) =>
      sh(`python3 -c "import os,sys
try:
  ${code}
  print('ok')
except OSError as e:
  print(e.errno)"`);
    assert.equal((await py(`os.setxattr('${dir}/f', 'user.a', b'1')`)).stdout.trim(), "95");
    assert.equal((await py(`os.getxattr('${dir}/f', 'user.a')`)).stdout.trim(), "95");
    assert.equal((await py(`os.listxattr('${dir}/f')`)).stdout.trim(), "95");
  });
});

test("FuseSession.run() resolves after umount and destroys the file system", async () => {
  const dir = await Deno.makeTempDir({ prefix: "s3csi-fuse-test-" });
  const fs = new MemFs();
  const fd = await mountFuse({ target: dir, fsname: "memfs" });
  const session = new FuseSession(fd, fs);
  const running = session.run();
  try {
    await ok(`ls ${dir}`);
    assert.equal(fs.inited, true);
    await ok(`umount ${dir}`);
    await running;
    assert.equal(fs.destroyed, 1);
    assert.equal(await checkMount(dir), "not_mounted");
  } finally {
    unmount(dir, { lazy: true });
    await Deno.remove(dir, { recursive: true });
  }
});

test("checkMount() reports a mount whose server stopped as stale until lazily unmounted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "s3csi-fuse-test-" });
  try {
    const fd = await mountFuse({ target: dir, fsname: "memfs" });
    const session = new FuseSession(fd, new MemFs());
    const running = session.run();
    await ok(`ls ${dir}`);
    session.stop(); // closes the fd: the kernel aborts the connection
    await running;
    assert.equal(await checkMount(dir), "stale");
    const ls = await sh(`ls ${dir}`);
    assert.match(ls.stderr, /Transport endpoint is not connected/);
    unmount(dir, { lazy: true });
    assert.equal(await checkMount(dir), "not_mounted");
    unmount(dir); // idempotent: not mounted is success
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(await checkMount(`${dir}/gone`), "missing");
});

test("tuneReadahead() sets the mount's bdi read_ahead_kb", async () => {
  await withMount(async ({ dir }) => {
    await tuneReadahead(dir, 1024);
    const m = await findMount(dir);
    const kb = await Deno.readTextFile(`/sys/class/bdi/${m!.major}:${m!.minor}/read_ahead_kb`);
    assert.equal(kb.trim(), "1024");
  });
  const plain = await Deno.makeTempDir();
  try {
    await assert.rejects(tuneReadahead(plain, 1024), /not a mount point/);
  } finally {
    await Deno.remove(plain);
  }
});

test("FuseSession with allowRoot refuses users other than the owner and root", async () => {
  await withMount(async ({ dir, fs }) => {
    fs.addFile(ROOT_INO, "f");
    assert.equal(await ok(`ls ${dir}`), "f\n");
    const other = await sh(`setpriv --reuid=65534 --regid=65534 --clear-groups ls ${dir}`);
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /Permission denied/);
  }, { mount: { allowOther: true }, session: { allowRoot: true, ownerUid: 0 } });
  // The same mount without allowRoot lets the other user in: the refusal above is the session's.
  await withMount(async ({ dir, fs }) => {
    fs.addFile(ROOT_INO, "f");
    assert.equal(await ok(`setpriv --reuid=65534 --regid=65534 --clear-groups ls ${dir}`), "f\n");
  }, { mount: { allowOther: true } });
});

test("mountFuse() with readOnly makes writes fail with EROFS", async () => {
  await withMount(async ({ dir }) => {
    const r = await sh(`touch ${dir}/x`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Read-only file system/);
    assert.match((await findMount(dir))!.options, /(^|,)ro(,|$)/);
  }, { mount: { readOnly: true } });
});

test("FuseSession aborts the handler of a read interrupted by a signal", async () => {
  const lines: string[] = [];
  const prev = setSink({ write: (l) => lines.push(l) } satisfies Sink);
  try {
    await withMount(async ({ dir, fs }) => {
      fs.addFile(ROOT_INO, "slow", new Uint8Array(8192));
      let entered!: () => void;
      const inRead = new Promise<void>((r) => (entered = r));
      let aborted!: (reason: unknown) => void;
      const wasAborted = new Promise<unknown>((r) => (aborted = r));
      fs.onRead = (ctx) =>
        new Promise<void>((_resolve, reject) => {
          ctx.signal.addEventListener("abort", () => {
            aborted(ctx.signal.reason);
            reject(ctx.signal.reason);
          });
          entered();
        });
      const child = new Deno.Command("dd", {
        args: [`if=${dir}/slow`, "of=/dev/null", "bs=4096", "count=1", "iflag=direct"],
        stdout: "null",
        stderr: "null",
      }).spawn();
      await inRead;
      child.kill("SIGINT");
      const reason = await wasAborted;
      assert.equal((reason as DOMException).name, "AbortError");
      const status = await child.status;
      assert.equal(status.success, false);
      fs.onRead = null;
      assert.equal(
        await ok(`dd if=${dir}/slow bs=4096 count=1 iflag=direct status=none | wc -c`),
        "4096\n",
      );
    });
  } finally {
    setSink(prev);
  }
  assert.ok(!lines.some((l) => l.includes('"level":"error"')), "an interrupt is not an error");
});

test("FuseSession.invalidateInode() and invalidateEntry() drop the kernel's caches", async () => {
  const fs = new MemFs({ ttlMs: 600_000 });
  await withMount(async ({ dir, session }) => {
    const ino = fs.addFile(ROOT_INO, "f", new TextEncoder().encode("old"));
    assert.equal(await ok(`stat -c %s ${dir}/f`), "3\n");
    fs.replaceContent(ino, new TextEncoder().encode("newer"));
    assert.equal(await ok(`stat -c %s ${dir}/f`), "3\n", "attributes are cached for 10 min");
    assert.equal(await session.invalidateInode(ino, -1, 0), true);
    assert.equal(await ok(`stat -c %s ${dir}/f`), "5\n");
    assert.equal(await ok(`cat ${dir}/f`), "newer");
    fs.removeName(ROOT_INO, "f");
    await ok(`stat ${dir}/f`); // the dentry is cached too
    assert.equal(await session.invalidateEntry(ROOT_INO, "f"), true);
    const r = await sh(`stat ${dir}/f`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /No such file or directory/);
  }, { fs });
});

test("serveFd() accepts /dev/fd/N of a /dev/fuse fd and refuses other files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "s3csi-fuse-test-" });
  try {
    const fd = await mountFuse({ target: dir, fsname: "memfs" });
    assert.equal(await serveFd(`/dev/fd/${fd}`), fd);
    const session = new FuseSession(fd, new MemFs());
    const running = session.run();
    assert.equal(await ok(`ls -A ${dir}`), "");
    unmount(dir);
    await running;
  } finally {
    unmount(dir, { lazy: true });
    await Deno.remove(dir, { recursive: true });
  }
  const f = await Deno.open("/dev/null");
  try {
    await assert.rejects(serveFd("/dev/fd/0x"), /expected "\/dev\/fd\/N"/);
    await assert.rejects(serveFd(987654), /not open/);
  } finally {
    f.close();
  }
  await assert.rejects(serveFd(0), /not "\/dev\/fuse"|not open/);
});

Deno.test("parseMountInfo() parses fields and undoes octal escapes", () => {
  const text = [
    "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
    "100 29 0:52 / /tmp/x rw,nosuid,nodev,relatime shared:5 master:7 - fuse.memfs memfs rw,user_id=0",
    "broken line",
  ].join("\n");
  const m = parseMountInfo(text);
  assert.equal(m.length, 2);
  assert.deepEqual(m[0], {
    mountId: 36,
    parentId: 35,
    major: 98,
    minor: 0,
    root: "/mnt1",
    mountPoint: "/mnt/with space",
    options: "rw,noatime",
    optional: ["master:1"],
    fstype: "ext3",
    source: "/dev/root",
    superOptions: "rw,errors=continue",
  });
  assert.equal(m[1]!.fstype, "fuse.memfs");
  assert.equal(m[1]!.minor, 52);
  assert.deepEqual(m[1]!.optional, ["shared:5", "master:7"]);
});
