/**
 * The benchmark's side-by-side table: the same user-level workloads run, in
 * the same run and on the same objects, through `s3csi mount` and through
 * its peers, each mounted as its users mount it, next to the raw client:
 * - s3fs (Debian's): `-f -o use_path_request_style -o url=…`, no cache;
 * - rclone (`scripts/tools.sh` builds it): `rclone mount` with
 *   `--vfs-cache-mode writes`, the mode its documentation gives for
 *   applications that write.
 *
 * Every measurement starts on a fresh mount after dropping the page cache.
 * Writes are timed until the object is complete in the bucket, not until
 * `close` returns: a tool that uploads after close (rclone's write cache) is
 * timed to the end of its upload, and the table says how long that took
 * after close. Memory is the tool's process's peak resident set (`VmHWM`)
 * over the 4-reader read.
 *
 * Credentials reach the peers through a file or their own environment, the
 * machine's CA variables are left out of their environment (they are not
 * needed for a local http endpoint, and some tools choke on them).
 *
 * @module
 */
import type { AwsObjectClient } from "../internal/s3/aws_object_client.ts";
import { readMountInfo } from "../internal/fuse/mod.ts";
import type { MinioServer } from "../tests/support/mod.ts";
import { startMount } from "../tests/mount/harness.ts";
import {
  MIB,
  mibPerSec,
  rawCreate,
  rawFirstByte,
  rawList,
  rawRead,
  rawWrite,
} from "./bench_raw.ts";
import { dropCaches, firstByteTimes, median, sh, vmStatus } from "./bench_shell.ts";

const dec = new TextDecoder();

/** A tool's name as a key or path part: "s3csi + journal" has spaces a shell would split. */
function slug(tool: string): string {
  return tool.replace(/[^A-Za-z0-9]+/g, "-");
}

/** A mounted tool: its serving process and where it is mounted. */
export interface ToolMount {
  pid: number;
  dir: string;
  stop(): Promise<void>;
}

export interface Tool {
  name: string;
  mount(dir: string): Promise<ToolMount>;
}

export interface PeerSizes {
  size: number;
  smallFiles: number;
  ttfbRuns: number;
  many: number;
  side: number;
}

/** Waits until `dir` is a FUSE mount point, or the process ended. */
async function mounted(dir: string, status: Promise<unknown>, what: string): Promise<void> {
  let ended = false;
  status.then(() => (ended = true));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !ended) {
    if ((await readMountInfo()).some((m) => m.mountPoint === dir && m.fstype.startsWith("fuse"))) {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not mount ${dir}`);
}

/** Starts a peer's process in the foreground and waits for its mount. */
async function spawnPeer(
  name: string,
  exe: string,
  args: string[],
  env: Record<string, string>,
  dir: string,
): Promise<ToolMount> {
  const child = new Deno.Command(exe, {
    args,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: "/root", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let err = "";
  const pump = (async () => {
    for await (const c of child.stderr) err = (err + dec.decode(c)).slice(-4000);
  })();
  const status = child.status;
  try {
    await mounted(dir, status, name);
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await status;
    await pump;
    throw new Error(`${(e as Error).message}: ${err.trim()}`);
  }
  return {
    pid: child.pid,
    dir,
    async stop() {
      await new Deno.Command("umount", { args: ["-l", dir] }).output();
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* exited */ }
      }, 10_000);
      await status;
      clearTimeout(timer);
      await pump;
    },
  };
}

/**
 * `s3csi mount`; with `journalDir`, each mount keeps a takeover journal
 * there (`--journal`, as the CSI node runs every mount), so that the two
 * columns show what the journal costs.
 */
export function s3csiTool(minio: MinioServer, bucket: string, journalDir?: string): Tool {
  let seq = 0;
  return {
    name: journalDir ? "s3csi + journal" : "s3csi",
    async mount(dir) {
      const journal = journalDir ? ["--journal", `${journalDir}/journal-${seq++}`] : [];
      const m = await startMount([
        bucket,
        dir,
        "--endpoint-url",
        minio.endpoint,
        "--region",
        minio.region,
        "--allow-overwrite",
        "--allow-delete",
        ...journal,
      ], {
        AWS_ACCESS_KEY_ID: minio.accessKeyId,
        AWS_SECRET_ACCESS_KEY: minio.secretAccessKey,
      });
      return { pid: m.pid, dir, stop: async () => void (await m.stop()) };
    },
  };
}

export async function s3fsTool(minio: MinioServer, bucket: string, work: string): Promise<Tool> {
  const passwd = `${work}/s3fs.passwd`;
  await Deno.writeTextFile(passwd, `${minio.accessKeyId}:${minio.secretAccessKey}\n`, {
    mode: 0o600,
  });
  return {
    name: "s3fs",
    mount: (dir) =>
      spawnPeer(
        "s3fs",
        "s3fs",
        [
          bucket,
          dir,
          "-f",
          "-o",
          `passwd_file=${passwd}`,
          "-o",
          `url=${minio.endpoint}`,
          "-o",
          "use_path_request_style",
          "-o",
          `endpoint=${minio.region}`,
        ],
        {},
        dir,
      ),
  };
}

export async function rcloneTool(
  minio: MinioServer,
  bucket: string,
  work: string,
  bin: string,
): Promise<Tool> {
  const config = `${work}/rclone.conf`;
  await Deno.writeTextFile(config, "");
  return {
    name: "rclone",
    mount: (dir) =>
      spawnPeer("rclone", bin, [
        "mount",
        `bench:${bucket}`,
        dir,
        "--config",
        config,
        "--vfs-cache-mode",
        "writes",
        "--cache-dir",
        `${work}/rclone-cache`,
      ], {
        RCLONE_CONFIG_BENCH_TYPE: "s3",
        RCLONE_CONFIG_BENCH_PROVIDER: "Minio",
        RCLONE_CONFIG_BENCH_ENDPOINT: minio.endpoint,
        RCLONE_CONFIG_BENCH_REGION: minio.region,
        RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: minio.accessKeyId,
        RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: minio.secretAccessKey,
      }, dir),
  };
}

/** One workload's figure for one column, as shown in the table. */
type Cell = string;

interface Workload {
  what: string;
  raw(): Promise<Cell>;
  run(m: ToolMount, tool: string): Promise<Cell>;
}

const rate = (bytes: number, ms: number) => `${(bytes / MIB / (ms / 1000)).toFixed(0)}`;

/** Polls `check` until the objects it looks for are complete in the bucket; returns when. */
async function complete(bucket: string, check: () => Promise<boolean>): Promise<number> {
  const deadline = Date.now() + 600_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`objects in ${bucket} never completed`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return performance.now();
}

function workloads(client: AwsObjectClient, bucket: string, s: PeerSizes): Workload[] {
  const keys4 = ["obj0", "obj1", "obj2", "obj3"];
  const ddRead = (m: ToolMount, ks: string[]) =>
    Promise.all(ks.map((k) => sh(`dd if=${m.dir}/${k} of=/dev/null bs=1M status=none`)));
  let seq = 0;
  return [
    {
      what: "sequential read, 1 reader (MiB/s)",
      async raw() {
        await dropCaches();
        const t = await rawRead(client, bucket, ["obj0"], s.size, 8 * MIB, 8);
        return mibPerSec(t).toFixed(0);
      },
      async run(m) {
        const t = performance.now();
        await ddRead(m, ["obj0"]);
        return rate(s.size, performance.now() - t);
      },
    },
    {
      what: "sequential read, 4 readers aggregate (MiB/s)",
      async raw() {
        await dropCaches();
        const t = await rawRead(client, bucket, keys4, s.size, 8 * MIB, 2);
        return mibPerSec(t).toFixed(0);
      },
      async run(m) {
        const t = performance.now();
        await ddRead(m, keys4);
        return `${rate(4 * s.size, performance.now() - t)} (peak RSS ${
          (vmStatus(m.pid, "VmHWM") / MIB).toFixed(0)
        } MiB)`;
      },
    },
    {
      what: "sequential write until the object is complete (MiB/s)",
      async raw() {
        const data = new Uint8Array(16 * MIB);
        const t = await rawWrite(client, bucket, `peer-raw-${seq++}`, s.size, 8 * MIB, 8, data);
        return mibPerSec(t).toFixed(0);
      },
      async run(m, tool) {
        const key = `peer-${slug(tool)}-w${seq++}`;
        const t = performance.now();
        await sh(`dd if=/dev/zero of=${m.dir}/${key} bs=1M count=${s.size / MIB} status=none`);
        const closed = performance.now();
        const done = await complete(bucket, async () => {
          const h = await client.headObject(bucket, key).catch(() => null);
          return h !== null && h.size === s.size;
        });
        const after = (done - closed) / 1000;
        return `${rate(s.size, done - t)}${
          after > 0.5 ? ` (upload ${after.toFixed(1)} s after close)` : ""
        }`;
      },
    },
    {
      what: `create ${s.smallFiles} files of 4 KiB, until all are in the bucket (files/s)`,
      async raw() {
        const t = await rawCreate(client, bucket, `peer-raw-small${seq++}/f`, s.smallFiles);
        return (s.smallFiles / (t.ms / 1000)).toFixed(0);
      },
      async run(m, tool) {
        const prefix = `peer-${slug(tool)}-small${seq++}`;
        await Deno.mkdir(`${m.dir}/${prefix}`);
        const t = performance.now();
        await sh(
          `cd ${m.dir}/${prefix} && i=0; while [ $i -lt ${s.smallFiles} ]; do ` +
            `head -c 4096 /dev/zero > f$i; i=$((i+1)); done`,
        );
        const closed = performance.now();
        const done = await complete(bucket, async () => {
          const listed = await rawList(client, bucket, `${prefix}/`);
          return listed.entries >= s.smallFiles;
        });
        const after = (done - closed) / 1000;
        return `${(s.smallFiles / ((done - t) / 1000)).toFixed(0)}${
          after > 0.5 ? ` (upload ${after.toFixed(1)} s after the loop)` : ""
        }`;
      },
    },
    {
      what: `time to first byte, open + read 1 byte, median of ${s.ttfbRuns} (ms)`,
      async raw() {
        const xs = [];
        for (let i = 0; i < s.ttfbRuns; i++) {
          await dropCaches();
          xs.push(await rawFirstByte(client, bucket, "obj1"));
        }
        return median(xs).toFixed(1);
      },
      async run(m) {
        return median(await firstByteTimes(`${m.dir}/obj1`, s.ttfbRuns, dropCaches)).toFixed(1);
      },
    },
    {
      what: `find over ${s.many} objects in ${s.side} directories (s)`,
      async raw() {
        const t = performance.now();
        await rawList(client, bucket, "tree/");
        for (let d = 0; d < s.side; d++) {
          await rawList(client, bucket, `tree/d${String(d).padStart(3, "0")}/`);
        }
        return ((performance.now() - t) / 1000).toFixed(2);
      },
      async run(m) {
        const t = performance.now();
        const n = Number((await sh(`find ${m.dir}/tree | wc -l`)).trim());
        if (n !== s.many + s.side + 1) throw new Error(`find listed ${n} paths`);
        return ((performance.now() - t) / 1000).toFixed(2);
      },
    },
    {
      what: `ls -l of ${s.many} entries (s)`,
      async raw() {
        return ((await rawList(client, bucket, "flat/")).ms / 1000).toFixed(2);
      },
      async run(m) {
        const t = performance.now();
        const n = Number((await sh(`ls -l --color=never ${m.dir}/flat | wc -l`)).trim()) - 1;
        if (n !== s.many) throw new Error(`ls -l listed ${n} entries`);
        return ((performance.now() - t) / 1000).toFixed(2);
      },
    },
  ];
}

/**
 * Runs every workload on a fresh mount of each tool (caches dropped first)
 * and with the raw client; returns the table's lines. A tool that fails a
 * workload gets the error in its cell, and the others go on.
 */
export async function sideBySide(
  client: AwsObjectClient,
  bucket: string,
  tools: Tool[],
  sizes: PeerSizes,
  work: string,
  progress: (msg: string) => void,
): Promise<string[]> {
  const lines = [
    `| workload | raw client | ${tools.map((t) => t.name).join(" | ")} |`,
    `| --- | --- |${tools.map(() => " --- |").join("")}`,
  ];
  let n = 0;
  for (const w of workloads(client, bucket, sizes)) {
    progress(`side by side: ${w.what}`);
    const cells = [await w.raw()];
    for (const tool of tools) {
      const dir = `${work}/peer${n++}`;
      await Deno.mkdir(dir);
      let cell: Cell;
      try {
        const m = await tool.mount(dir);
        try {
          await dropCaches();
          cell = await w.run(m, tool.name);
        } finally {
          await m.stop();
        }
      } catch (err) {
        cell = `failed: ${(err as Error).message.split("\n")[0].slice(0, 80)}`;
      }
      progress(`  ${tool.name}: ${cell}`);
      cells.push(cell);
      await Deno.remove(dir).catch(() => {});
    }
    lines.push(`| ${w.what} | ${cells.join(" | ")} |`);
  }
  return lines;
}
