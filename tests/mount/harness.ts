/**
 * Harness of the real-mount tier: a fresh MinIO with one bucket, and
 * `s3csi mount … --foreground` child processes serving it through the
 * kernel's FUSE, exactly as a user runs it.
 *
 * The test process never serves a mount itself, so it may use any file API
 * on the mount point (sync or async) and real tools in child processes.
 * Every mount is detached (`umount -l`) and its process stopped in `finally`;
 * a mount that ignores SIGTERM is killed. Data for round trips is written to
 * scratch files on disk and compared by SHA-256, so the tier's memory stays
 * small even for 100 MiB files.
 *
 * Needs root, /dev/fuse and the tools of `scripts/tools.sh need_debs`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { AwsObjectClient } from "../../internal/s3/aws_object_client.ts";
import {
  minioClientConfig,
  type MinioServer,
  randomHex,
  startMinio,
  type StartMinioOptions,
  tempDir,
  withTimeout,
} from "../support/mod.ts";

export const KIB = 1024;
export const MIB = 1024 * 1024;

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const dec = new TextDecoder();

/** Whether this machine can run the tier (root and /dev/fuse); tests are ignored otherwise. */
export const canMount: boolean = Deno.uid() === 0 && (() => {
  try {
    return Deno.statSync("/dev/fuse").isCharDevice === true;
  } catch {
    return false;
  }
})();

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program (no shell) and collects its output. */
export async function run(cmd: string, args: string[], cwd?: string): Promise<CommandResult> {
  const out = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(cwd ? { cwd } : {}),
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs a program that must succeed; returns its stdout. */
export async function ok(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await run(cmd, args, cwd);
  assert.equal(r.code, 0, `"${cmd} ${args.join(" ")}" exited with ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Runs a program that must fail; returns its stderr (where tools print errno texts). */
export async function fails(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  assert.notEqual(r.code, 0, `"${cmd} ${args.join(" ")}" succeeded but should have failed`);
  return r.stderr;
}

/** Whether a program is on PATH. */
export async function have(cmd: string): Promise<boolean> {
  return (await run("sh", ["-c", `command -v ${cmd}`])).code === 0;
}

/** SHA-256 of a file, computed by `sha256sum` (so reads go through the kernel like any tool's). */
export async function sha256File(path: string): Promise<string> {
  return (await ok("sha256sum", [path])).split(" ")[0];
}

/** SHA-256 hex of bytes. */
export async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Writes `size` random bytes to `path` in 1 MiB chunks and returns their SHA-256. */
export async function randomFile(path: string, size: number): Promise<string> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const chunk = new Uint8Array(MIB);
    for (let done = 0; done < size;) {
      const n = Math.min(MIB, size - done);
      for (let i = 0; i < n; i += 65536) {
        crypto.getRandomValues(chunk.subarray(i, Math.min(i + 65536, n)));
      }
      let w = 0;
      while (w < n) w += await file.write(chunk.subarray(w, n));
      done += n;
    }
  } finally {
    file.close();
  }
  return await sha256File(path);
}

/** Linux errno numbers the tier expects, for errors Deno reports only as "(os error N)". */
const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  5: "EIO",
  9: "EBADF",
  13: "EACCES",
  17: "EEXIST",
  18: "EXDEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  27: "EFBIG",
  30: "EROFS",
  38: "ENOSYS",
  39: "ENOTEMPTY",
  95: "EOPNOTSUPP",
  103: "ECONNABORTED",
  107: "ENOTCONN",
  116: "ESTALE",
};

/** The errno name of an error from a Deno file API ("EPERM", "ESTALE", ...). */
export function errnoName(err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code) return code;
  const n = /\(os error (\d+)\)/.exec(String(err))?.[1];
  assert.ok(n, `expected an error with an errno, got ${err}`);
  return ERRNO_NAMES[Number(n)] ?? `errno ${n}`;
}

/** The errno name a Deno file API call fails with; fails the test if it succeeds. */
export async function errnoOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => assert.fail("expected the call to fail, but it succeeded"),
    (e: unknown) => e,
  );
  return errnoName(err);
}

/** A running `s3csi mount --foreground` child process. */
export interface MountProcess {
  /** The mount point. */
  dir: string;
  pid: number;
  /** Everything it wrote so far (stdout and the JSON log on stderr). */
  output(): string;
  /** Resolves with the exit code when it ends. */
  status: Promise<number>;
  /** Detaches the mount and stops the process (SIGKILL if it does not end); returns its exit code. */
  stop(): Promise<number>;
}

/** A fresh MinIO with one empty bucket and a client for it. */
export interface Env {
  minio: MinioServer;
  s3: AwsObjectClient;
  bucket: string;
  /** A scratch directory on disk, removed at the end. */
  work: string;
  /** Environment for the mount process: the bucket owner's credentials. */
  credentials: Record<string, string>;
  /** Starts a mount of the bucket on a new directory under `work` (see `MountOptions`). */
  mount(args?: string[], opts?: MountOptions): Promise<MountProcess>;
}

export interface MountOptions {
  /** S3 endpoint to mount through (a fault proxy); MinIO's by default. */
  endpoint?: string;
  /** A cgroup's `cgroup.procs`: the process joins it before it execs, so all its memory is charged there. */
  cgroupProcs?: string;
}

/** Options after `<bucket> <dir>` that every mount of the tier gets. */
function baseArgs(env: Env, endpoint = env.minio.endpoint): string[] {
  return ["--endpoint-url", endpoint, "--region", env.minio.region];
}

/** Runs `fn` with a fresh MinIO and bucket; stops every mount it started and the server. */
export async function withEnv(
  fn: (env: Env) => Promise<void>,
  minioOptions: StartMinioOptions = {},
): Promise<void> {
  const minio = await startMinio({ quiet: true, ...minioOptions });
  const s3 = new AwsObjectClient(minioClientConfig(minio));
  const work = await tempDir("s3csi-mount-test-");
  const bucket = `mt-${randomHex(6)}`;
  const mounts: MountProcess[] = [];
  let seq = 0;
  const env: Env = {
    minio,
    s3,
    bucket,
    work,
    credentials: {
      AWS_ACCESS_KEY_ID: minio.accessKeyId,
      AWS_SECRET_ACCESS_KEY: minio.secretAccessKey,
    },
    async mount(args = [], opts = {}) {
      const dir = `${work}/mnt${seq++}`;
      await Deno.mkdir(dir);
      const m = await startMount(
        [bucket, dir, ...baseArgs(env, opts.endpoint), ...args],
        env.credentials,
        opts.cgroupProcs,
      );
      mounts.push(m);
      return m;
    },
  };
  try {
    await s3.createBucket(bucket);
    await fn(env);
  } finally {
    for (const m of mounts) await m.stop();
    s3.close();
    await minio.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/**
 * Spawns `s3csi mount <args> --foreground` and waits for its ready line.
 * Throws (with the process output) if it exits first or is not ready in time.
 */
export async function startMount(
  args: string[],
  env: Record<string, string>,
  cgroupProcs?: string,
): Promise<MountProcess> {
  const dir = args[1];
  const argv = [Deno.execPath(), "run", "-A", MAIN, "mount", ...args, "--foreground"];
  // The shell joins the cgroup and then becomes the mount process (same pid).
  const [program, ...programArgs] = cgroupProcs
    ? ["sh", "-c", 'echo $$ > "$0" && exec "$@"', cgroupProcs, ...argv]
    : argv;
  const child = new Deno.Command(program, {
    args: programArgs,
    env: { ...env, NO_COLOR: "1" },
    clearEnv: false,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  let ready!: () => void;
  const readyLine = new Promise<void>((r) => (ready = r));
  const pump = async (stream: ReadableStream<Uint8Array>, watch: boolean) => {
    const d = new TextDecoder();
    for await (const chunk of stream) {
      out += d.decode(chunk, { stream: true });
      if (watch && /mounted bucket ".*" at .*\n/.test(out)) ready();
    }
  };
  const pumps = Promise.all([pump(child.stdout, true), pump(child.stderr, false)]);
  const status = child.status.then(async (s) => {
    await pumps;
    return s.code;
  });
  let exited = false;
  // A test runner that dies before stop() must not leave a mount or a process behind.
  const onUnload = () => {
    new Deno.Command("umount", { args: ["-l", dir], stdout: "null", stderr: "null" }).outputSync();
    if (!exited) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
  };
  globalThis.addEventListener("unload", onUnload);
  status.then(() => (exited = true));

  let stopping: Promise<number> | undefined;
  const proc: MountProcess = {
    dir,
    pid: child.pid,
    output: () => out,
    status,
    stop() {
      stopping ??= (async () => {
        globalThis.removeEventListener("unload", onUnload);
        await run("umount", ["-l", dir]);
        if (!exited) {
          try {
            child.kill("SIGTERM");
          } catch {
            // Already gone.
          }
        }
        return await withTimeout(status, STOP_TIMEOUT_MS, `mount of "${dir}" to exit`)
          .catch(() => {
            try {
              child.kill("SIGKILL");
            } catch {
              // Exited meanwhile.
            }
            return status;
          });
      })();
      return stopping;
    },
  };
  const outcome = await withTimeout(
    Promise.race([readyLine.then(() => "ready"), status.then(() => "exited")]),
    READY_TIMEOUT_MS,
    `mount of "${dir}" to be ready`,
  ).catch(() => "timeout");
  if (outcome !== "ready") {
    await proc.stop();
    throw new Error(`s3csi mount of "${dir}" did not become ready (${outcome}):\n${out}`);
  }
  return proc;
}

/** Runs `s3csi mount <args> --foreground` expecting it to fail at startup. */
export async function mountFailure(
  args: string[],
  env: Record<string, string>,
): Promise<CommandResult> {
  const out = await withTimeout(
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "mount", ...args, "--foreground"],
      env: { ...env, NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output(),
    READY_TIMEOUT_MS,
    "s3csi mount to fail",
  );
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Whether `dir` is a mount point now, from /proc/self/mountinfo. */
export async function isMounted(dir: string): Promise<boolean> {
  const info = await Deno.readTextFile("/proc/self/mountinfo");
  return info.split("\n").some((l) => l.split(" ")[4] === dir);
}

/** Reads an object fully through the client. */
export async function objectSha256(env: Env, key: string): Promise<string> {
  const got = await env.s3.getObject(env.bucket, key);
  return await sha256(got.body as Uint8Array<ArrayBuffer>);
}
