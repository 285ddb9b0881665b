/**
 * `scripts/bench`: throughput, latency and memory of `s3csi mount` against a
 * local MinIO it starts itself, each throughput next to a baseline measured
 * in the same run with the project's own S3 client and no FUSE in between
 * (`bench_raw.ts`).
 *
 * Method. Every measurement runs after `sync; echo 3 >
 * /proc/sys/vm/drop_caches`, so reads go to S3 and not to the page cache;
 * the baseline runs after the same drop. The tools are the ones users run
 * (`dd bs=1M`, `fio`, a shell loop, `ls -l`, `find`), timed from outside.
 * Sequential reads run on one long-running mount per row, in rounds that
 * pair each mount read with a baseline read just before it (see `reads`);
 * the other rows use a fresh `s3csi mount` process per measurement. The
 * peak RSS is the mount process's `VmHWM` over the 4-reader reads, on a
 * mount that did nothing else.
 *
 *     scripts/bench [--quick] [--no-peers] [--write-doc]
 *
 * `--quick` shrinks every size (a smoke run of the script itself);
 * `--no-peers` leaves s3fs and rclone out of the side-by-side table
 * (`bench_peers.ts`), which otherwise measures them in the same run; the
 * table always has `s3csi` twice, without and with the takeover journal
 * the CSI node gives every mount, for the journal's cost;
 * `--write-doc` replaces the results section of docs/benchmarks.md.
 * Needs root (drop_caches, FUSE), fio, and a MinIO binary (`MINIO_BIN` or
 * the build `scripts/tools.sh` caches).
 *
 * @module
 */
import { AwsObjectClient } from "../internal/s3/aws_object_client.ts";
import { minioClientConfig, type MinioServer, startMinio, tempDir } from "../tests/support/mod.ts";
import { type MountProcess, startMount } from "../tests/mount/harness.ts";
import {
  MIB,
  mibPerSec,
  putMany,
  rawCreate,
  rawFirstByte,
  rawList,
  rawRandomRead,
  rawRead,
  rawWrite,
  type Timed,
} from "./bench_raw.ts";
import { rcloneTool, s3csiTool, s3fsTool, sideBySide } from "./bench_peers.ts";
import { publishCells, publishLatency } from "./bench_publish.ts";
import { dropCaches, firstByteTimes, median, sh, vmStatus } from "./bench_shell.ts";

const quick = Deno.args.includes("--quick");
const noPeers = Deno.args.includes("--no-peers");
const writeDoc = Deno.args.includes("--write-doc");

const SIZE = quick ? 128 * MIB : 1024 * MIB;
const SMALL_FILES = quick ? 100 : 1000;
const MANY = quick ? 1000 : 10_000;
const TTFB_RUNS = quick ? 5 : 21;
const PUBLISH_RUNS = quick ? 3 : 11;
const RANDOM_SECONDS = quick ? 5 : 20;
const ROUNDS = quick ? 1 : 2;
/** Paired baseline/mount rounds per sequential-read row, after the first read. */
const PAIRS = quick ? 2 : 5;
const BUCKET = "bench";

interface Row {
  what: string;
  mount: string;
  baseline: string;
  ratio: string;
  note?: string;
}

function fmtRate(t: Timed): string {
  return `${mibPerSec(t).toFixed(0)} MiB/s`;
}

function ratio(a: number, b: number): string {
  return `${(a / b * 100).toFixed(0)} %`;
}

function best(ts: Timed[]): Timed {
  return ts.reduce((a, b) => (mibPerSec(b) > mibPerSec(a) ? b : a));
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t };
}

function progress(msg: string): void {
  console.error(`[bench] ${msg}`);
}

class Bench {
  readonly rows: Row[] = [];
  readonly notes: string[] = [];
  #seq = 0;

  constructor(
    readonly minio: MinioServer,
    readonly client: AwsObjectClient,
    readonly work: string,
  ) {}

  /** A fresh mount of the bench bucket, with caches dropped. */
  async mount(fn: (m: MountProcess) => Promise<void>, args: string[] = []): Promise<void> {
    const dir = `${this.work}/mnt${this.#seq++}`;
    await Deno.mkdir(dir);
    const m = await startMount([
      BUCKET,
      dir,
      "--endpoint-url",
      this.minio.endpoint,
      "--region",
      this.minio.region,
      ...args,
    ], {
      AWS_ACCESS_KEY_ID: this.minio.accessKeyId,
      AWS_SECRET_ACCESS_KEY: this.minio.secretAccessKey,
    });
    try {
      await dropCaches();
      await fn(m);
    } finally {
      await m.stop();
      await Deno.remove(dir).catch(() => {});
    }
  }

  async writes(): Promise<void> {
    progress(`sequential write of ${SIZE / MIB} MiB`);
    const data = new Uint8Array(16 * MIB);
    const raw: Timed[] = [];
    // Their objects are the read benchmark's objects. One part at a time (8 MiB x 1) is how the
    // mount uploads a single file; it is shown for reference, the baseline is the best.
    const configs = [[8, 4], [8, 8], [16, 4], [16, 8], [8, 1]];
    for (const [i, [part, conc]] of configs.entries()) {
      const t = await rawWrite(this.client, BUCKET, `obj${i}`, SIZE, part * MIB, conc, data);
      progress(`  raw multipart ${part} MiB x ${conc}: ${fmtRate(t)}`);
      if (conc > 1) raw.push(t);
      else this.notes.push(`Raw multipart upload with one part in flight: ${fmtRate(t)}.`);
    }
    const mounted: Timed[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      await this.mount(async (m) => {
        const { ms } = await timed(() =>
          sh(`dd if=/dev/zero of=${m.dir}/written${r} bs=1M count=${SIZE / MIB} status=none`)
        );
        mounted.push({ bytes: SIZE, ms });
      });
      progress(`  mount dd bs=1M: ${fmtRate(mounted[r])}`);
    }
    const m = best(mounted);
    const b = best(raw);
    this.rows.push({
      what: `Sequential write, ${SIZE / MIB} MiB (dd bs=1M)`,
      mount: fmtRate(m),
      baseline: fmtRate(b),
      ratio: ratio(mibPerSec(m), mibPerSec(b)),
    });
  }

  /**
   * Sequential reads, mount against baseline in paired rounds.
   *
   * On 2 cores shared with MinIO the same transfer's speed drifts by up to
   * 1.5x within one run (the machine's CPU time per GiB for the very same
   * raw read varies as much), so each mount read is paired with a baseline
   * read taken just before it, and the ratio reported is the median of the
   * paired ratios. The mount is a long-running one, as a CSI volume's is: its
   * first read, which also pays for compiling the JavaScript hot paths, is
   * shown on a row of its own. Every read starts after dropping caches.
   */
  async reads(): Promise<void> {
    progress(`sequential read of ${SIZE / MIB} MiB, 1 reader`);
    const conc1 = await this.#bestConcurrency(["obj0"], [4, 8, 16]);
    await this.#pairedReads({
      keys: ["obj0"],
      conc: conc1,
      what: `Sequential read, ${SIZE / MIB} MiB, 1 reader (dd bs=1M)`,
      bar: 0.7,
    });

    progress(`sequential read, 4 readers of 4 objects of ${SIZE / MIB} MiB`);
    const keys = ["obj0", "obj1", "obj2", "obj3"];
    const conc4 = await this.#bestConcurrency(keys, [2, 4, 8]);
    const peak = await this.#pairedReads({
      keys,
      conc: conc4,
      what: `Sequential read, 4 readers x ${SIZE / MIB} MiB (aggregate)`,
    });
    this.rows.push({
      what: "Peak RSS of the mount process over all 4-reader reads (VmHWM)",
      mount: `${(peak / MIB).toFixed(0)} MiB`,
      baseline: "",
      ratio: "",
      note: peak < 512 * MIB ? "meets < 512 MiB" : "ABOVE 512 MiB",
    });
  }

  /** The baseline's best GET concurrency (8 MiB parts) for reading `keys` at once. */
  async #bestConcurrency(keys: string[], options: number[]): Promise<number> {
    let bestConc = options[0];
    let bestRate = 0;
    for (const conc of options) {
      await dropCaches();
      const t = await rawRead(this.client, BUCKET, keys, SIZE, 8 * MIB, conc);
      progress(`  raw ${keys.length} object(s) x ${conc} x 8 MiB GETs: ${fmtRate(t)}`);
      if (mibPerSec(t) > bestRate) [bestConc, bestRate] = [conc, mibPerSec(t)];
    }
    return bestConc;
  }

  /**
   * One mount, `PAIRS + 1` reads of `keys` (one `dd` each, in parallel), each
   * preceded by a baseline read; pushes the rows and returns the mount's peak RSS.
   */
  async #pairedReads(
    o: { keys: string[]; conc: number; what: string; bar?: number },
  ): Promise<number> {
    const bytes = SIZE * o.keys.length;
    const pairs: { raw: Timed; mount: Timed }[] = [];
    let peak = 0;
    await this.mount(async (m) => {
      let sampled = 0;
      const sampler = setInterval(() => {
        sampled = Math.max(sampled, vmStatus(m.pid, "VmRSS"));
      }, 100);
      try {
        for (let r = 0; r <= PAIRS; r++) {
          await dropCaches();
          const raw = await rawRead(this.client, BUCKET, o.keys, SIZE, 8 * MIB, o.conc);
          await dropCaches();
          const { ms } = await timed(() =>
            Promise.all(
              o.keys.map((k) => sh(`dd if=${m.dir}/${k} of=/dev/null bs=1M status=none`)),
            )
          );
          const mount = { bytes, ms };
          progress(
            `  ${r === 0 ? "first read" : `pair ${r}`}: raw ${fmtRate(raw)}, mount ${
              fmtRate(mount)
            } (${ratio(mibPerSec(mount), mibPerSec(raw))})`,
          );
          pairs.push({ raw, mount });
        }
      } finally {
        clearInterval(sampler);
      }
      peak = Math.max(vmStatus(m.pid, "VmHWM"), sampled);
    });
    const [first, ...rest] = pairs;
    const ratios = rest.map((p) => mibPerSec(p.mount) / mibPerSec(p.raw));
    const r = median(ratios);
    const range = `paired rounds ${ratio(Math.min(...ratios), 1)} to ${
      ratio(Math.max(...ratios), 1)
    }`;
    this.rows.push({
      what: `${o.what}, median of ${rest.length} paired rounds`,
      mount: `${median(rest.map((p) => mibPerSec(p.mount))).toFixed(0)} MiB/s`,
      baseline: `${median(rest.map((p) => mibPerSec(p.raw))).toFixed(0)} MiB/s`,
      ratio: ratio(r, 1),
      note: o.bar === undefined
        ? range
        : `${r >= o.bar ? "meets" : "BELOW"} >= ${o.bar * 100} %; ${range}`,
    });
    this.rows.push({
      what: `${o.what}, first read on a fresh mount`,
      mount: fmtRate(first.mount),
      baseline: fmtRate(first.raw),
      ratio: ratio(mibPerSec(first.mount), mibPerSec(first.raw)),
    });
    return peak;
  }

  async randomReads(): Promise<void> {
    progress(`random 4 KiB reads for ${RANDOM_SECONDS} s`);
    let iops = 0;
    let p50 = 0;
    await this.mount(async (m) => {
      const out = await sh(
        `fio --name=randread --filename=${m.dir}/obj0 --rw=randread --bs=4k --size=${SIZE} ` +
          `--runtime=${RANDOM_SECONDS} --time_based --ioengine=psync --norandommap ` +
          `--output-format=json`,
      );
      const job = JSON.parse(out.slice(out.indexOf("{"))).jobs[0];
      if (job.error) throw new Error(`fio randread failed with error "${job.error}"`);
      iops = job.read.iops;
      p50 = job.read.clat_ns.percentile["50.000000"] / 1e6;
    });
    await dropCaches();
    const raw = await rawRandomRead(this.client, BUCKET, "obj0", SIZE, 4096, RANDOM_SECONDS / 2);
    const rawIops = raw.ops / (raw.ms / 1000);
    this.rows.push({
      what: "Random 4 KiB reads, 1 job (fio randread, psync)",
      mount: `${iops.toFixed(0)} IOPS (p50 ${p50.toFixed(1)} ms)`,
      baseline: `${rawIops.toFixed(0)} IOPS`,
      ratio: ratio(iops, rawIops),
    });
  }

  async smallFiles(): Promise<void> {
    progress(`creating ${SMALL_FILES} small files`);
    let ms = 0;
    await this.mount(async (m) => {
      await Deno.mkdir(`${m.dir}/small`);
      ms = (await timed(() =>
        sh(
          `cd ${m.dir}/small && i=0; while [ $i -lt ${SMALL_FILES} ]; do echo x > f$i; i=$((i+1)); done`,
        )
      )).ms;
    });
    const raw = await rawCreate(this.client, BUCKET, "small-raw/f", SMALL_FILES);
    const rate = SMALL_FILES / (ms / 1000);
    const rawRate = SMALL_FILES / (raw.ms / 1000);
    this.rows.push({
      what: `Create ${SMALL_FILES} small files (shell loop, echo x > f$i)`,
      mount: `${rate.toFixed(0)} files/s`,
      baseline: `${rawRate.toFixed(0)} PUT/s`,
      ratio: ratio(rate, rawRate),
    });
  }

  async listings(): Promise<void> {
    progress(`putting ${MANY} objects flat and ${MANY} in a 2-level tree`);
    const side = Math.round(Math.sqrt(MANY));
    const pad = (i: number, n: number) => String(i).padStart(n, "0");
    await putMany(this.client, BUCKET, MANY, 32, (i) => `flat/f${pad(i, 5)}`);
    await putMany(
      this.client,
      BUCKET,
      MANY,
      32,
      (i) => `tree/d${pad(Math.floor(i / side), 3)}/f${pad(i % side, 3)}`,
    );

    progress("ls -l and find");
    let lsMs = 0;
    let lsCount = 0;
    await this.mount(async (m) => {
      const r = await timed(() => sh(`ls -l --color=never ${m.dir}/flat | wc -l`));
      lsMs = r.ms;
      lsCount = Number(r.value.trim()) - 1; // the "total" line
    });
    let findMs = 0;
    let findCount = 0;
    await this.mount(async (m) => {
      const r = await timed(() => sh(`find ${m.dir}/tree | wc -l`));
      findMs = r.ms;
      findCount = Number(r.value.trim());
    });
    if (lsCount !== MANY) throw new Error(`ls -l listed "${lsCount}" entries, expected "${MANY}"`);
    if (findCount !== MANY + side + 1) {
      throw new Error(`find listed "${findCount}" paths, expected "${MANY + side + 1}"`);
    }
    await dropCaches();
    const rawFlat = await rawList(this.client, BUCKET, "flat/");
    const rawTree = await timed(async () => {
      const top = await rawList(this.client, BUCKET, "tree/");
      for (let d = 0; d < side; d++) await rawList(this.client, BUCKET, `tree/d${pad(d, 3)}/`);
      return top;
    });
    this.rows.push({
      what: `ls -l of a directory of ${MANY} objects`,
      mount: `${(lsMs / 1000).toFixed(2)} s`,
      baseline: `${(rawFlat.ms / 1000).toFixed(2)} s`,
      ratio: ratio(rawFlat.ms, lsMs),
      note: "baseline: ListObjectsV2 pages",
    });
    this.rows.push({
      what: `find over ${MANY} objects in ${side} directories`,
      mount: `${(findMs / 1000).toFixed(2)} s`,
      baseline: `${(rawTree.ms / 1000).toFixed(2)} s`,
      ratio: ratio(rawTree.ms, findMs),
      note: "baseline: one listing per directory",
    });
  }

  async publish(): Promise<void> {
    progress(`publish latency, median of ${PUBLISH_RUNS}`);
    const cells = publishCells(await publishLatency(this.minio, BUCKET, PUBLISH_RUNS));
    this.rows.push({
      what: `NodePublishVolume until the target serves (s3csi node, median of ${PUBLISH_RUNS})`,
      ...cells,
      note: "baseline: new process + HeadBucket + ListObjectsV2",
    });
  }

  async firstByte(): Promise<void> {
    progress(`time to first byte, median of ${TTFB_RUNS}`);
    let times: number[] = [];
    await this.mount(async (m) => {
      times = await firstByteTimes(
        `${m.dir}/obj1`,
        TTFB_RUNS,
        () => sh("echo 1 > /proc/sys/vm/drop_caches"),
      );
    });
    const raw: number[] = [];
    for (let i = 0; i < TTFB_RUNS; i++) {
      await dropCaches(); // as cold as the mount's: MinIO reads its metadata from disk again
      raw.push(await rawFirstByte(this.client, BUCKET, "obj1"));
    }
    this.rows.push({
      what: "Time to first byte: open + read 1 byte of a large object (median)",
      mount: `${median(times).toFixed(1)} ms`,
      baseline: `${median(raw).toFixed(1)} ms`,
      ratio: ratio(median(raw), median(times)),
      note: "baseline: one 1-byte ranged GET, page cache dropped before each",
    });
  }
}

async function machine(): Promise<string[]> {
  const mem = ["```", ...(await sh("free -h")).trimEnd().split("\n"), "```"];
  return [
    `- CPUs (nproc): ${(await sh("nproc")).trim()}`,
    `- Kernel: ${(await sh("uname -r")).trim()}`,
    `- Deno: ${Deno.version.deno} (V8 ${Deno.version.v8})`,
    `- MinIO: local single-drive server on 127.0.0.1, data under /var/tmp (same machine)`,
    "- Memory (free -h):",
    "",
    ...mem,
  ];
}

function table(rows: Row[]): string[] {
  const lines = [
    "| Measurement | s3csi mount | Baseline (AwsObjectClient, no FUSE) | Mount / baseline | Note |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const r of rows) {
    lines.push(`| ${r.what} | ${r.mount} | ${r.baseline} | ${r.ratio} | ${r.note ?? ""} |`);
  }
  return lines;
}

const BEGIN = "<!-- bench:begin -->";
const END = "<!-- bench:end -->";

async function updateDoc(section: string): Promise<void> {
  const path = new URL("../docs/benchmarks.md", import.meta.url).pathname;
  let doc = await Deno.readTextFile(path).catch(() => `# Benchmarks\n\n${BEGIN}\n${END}\n`);
  if (!doc.includes(BEGIN) || !doc.includes(END)) doc += `\n${BEGIN}\n${END}\n`;
  const before = doc.slice(0, doc.indexOf(BEGIN) + BEGIN.length);
  const after = doc.slice(doc.indexOf(END));
  await Deno.writeTextFile(path, `${before}\n${section}\n${after}`);
  // Keep the repository's `deno fmt --check` clean.
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", path] }).output();
  progress(`wrote ${path}`);
}

async function main(): Promise<number> {
  if (Deno.uid() !== 0) {
    console.error("scripts/bench: needs root (FUSE mounts and drop_caches)");
    return 1;
  }
  const started = performance.now();
  const minio = await startMinio({ quiet: true });
  const client = new AwsObjectClient({ ...minioClientConfig(minio), maxConnections: 64 });
  const work = await tempDir("s3csi-bench-");
  let bench: Bench | undefined;
  let peers: string[] = [];
  try {
    await client.createBucket(BUCKET);
    bench = new Bench(minio, client, work);
    await bench.writes();
    await bench.reads();
    await bench.firstByte();
    await bench.randomReads();
    await bench.smallFiles();
    await bench.listings();
    await bench.publish();
    const tools = [s3csiTool(minio, BUCKET), s3csiTool(minio, BUCKET, work)];
    if (!noPeers) {
      const rclone = Deno.env.get("RCLONE_BIN");
      if (!rclone) throw new Error("RCLONE_BIN is not set: run through scripts/bench");
      tools.push(
        await s3fsTool(minio, BUCKET, work),
        await rcloneTool(minio, BUCKET, work, rclone),
      );
    }
    peers = await sideBySide(
      client,
      BUCKET,
      tools,
      {
        size: SIZE,
        smallFiles: SMALL_FILES,
        ttfbRuns: TTFB_RUNS,
        many: MANY,
        side: Math.round(Math.sqrt(MANY)),
      },
      work,
      progress,
    );
  } finally {
    client.close();
    await minio.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  const minutes = ((performance.now() - started) / 60_000).toFixed(1);
  const section = [
    `Run of ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC` +
    `${quick ? " (--quick: reduced sizes)" : ""}, ${minutes} min in all.`,
    "",
    ...(await machine()),
    "",
    ...table(bench.rows),
    ...(bench.notes.length ? ["", ...bench.notes] : []),
    "",
    "Side by side, each tool on a fresh mount of the same objects (`scripts/bench_peers.ts`):",
    "",
    ...peers,
  ].join("\n");
  console.log(section);
  if (writeDoc) await updateDoc(section);
  return 0;
}

Deno.exit(await main());
