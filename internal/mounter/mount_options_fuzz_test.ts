/**
 * Fuzzing of the two parsers that read what users (and attackers) write in
 * a PersistentVolume: the mount-option parser and the volume-ID decoder.
 * Inputs mix random strings (every code unit, NUL and newlines included)
 * with fragments of known attacks: options that reach the host (`cache
 * /etc`, `prefix ../`), injection through spaces, `=` and newlines, and
 * refused names. The properties: the parser either returns options that
 * keep every path inside its area, or refuses with INVALID_ARGUMENT naming
 * the field; it never throws anything else. The decoder returns nothing or
 * a volume whose parts rebuild the very ID it was given.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { InvalidArgumentError } from "../errors/mod.ts";
import { parseVolumeId, validateBucketName } from "../csi/volume_id.ts";
import { parseMountOptions } from "./mount_options.ts";

const CACHE_ROOT = "/var/lib/kubelet/plugins/s3.csi.scality.com/cache";
/** A few thousand in CI; S3CSI_FUZZ_RUNS asks for more. */
const RUNS = Number(Deno.env.get("S3CSI_FUZZ_RUNS") ?? 3000);

const hostile = fc.constantFrom(
  "cache /etc",
  "cache=/etc",
  "cache ../../etc",
  "cache=..",
  "prefix ../",
  "prefix=/abs/",
  "prefix a/../b/",
  "prefix=a//b/",
  "log-file /etc/passwd",
  "profile x",
  "allow-other\n--cache=/etc",
  "uid=0 --cache /",
  "read-only=true",
  "read-only=false",
  "max-memory 0",
  "max-memory 99999999999999999999",
  "region us-east-1\u0000--endpoint-url=http://evil",
  "--endpoint-url http://169.254.169.254",
  "-o allow_other",
  "gid=-1",
  "file-mode 9999",
  "metadata-ttl indefinite",
  "=",
  " ",
  "--",
);

/** Real option names with random values: most of the parser's paths start here. */
const named = fc.tuple(
  fc.constantFrom(
    "cache",
    "prefix",
    "uid",
    "gid",
    "dir-mode",
    "file-mode",
    "allow-delete",
    "allow-overwrite",
    "allow-other",
    "read-only",
    "max-memory",
    "metadata-ttl",
    "storage-class",
    "sse",
    "part-size",
  ),
  fc.constantFrom(" ", "=", "", "  ", "\t"),
  fc.oneof(
    fc.string({ unit: "binary", maxLength: 16 }),
    fc.constantFrom("a/", "a/b/", "../", "x", "0", "1000", "0755", "true", "60", "/etc", "sub"),
  ),
).map(([k, sep, v]) => `${k}${sep}${v}`);

const option = fc.oneof(
  named,
  named,
  hostile,
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.tuple(hostile, fc.string({ unit: "binary", maxLength: 12 })).map(([a, b]) => a + b),
);

function insideCacheRoot(path: string): boolean {
  return (path === CACHE_ROOT || path.startsWith(`${CACHE_ROOT}/`)) &&
    !path.split("/").includes("..");
}

let accepted = 0;

Deno.test("fuzz: parseMountOptions() returns options that stay inside their areas, or INVALID_ARGUMENT naming the field, for any input", () => {
  fc.assert(
    fc.property(fc.array(option, { maxLength: 4 }), (flags) => {
      let out;
      try {
        out = parseMountOptions(flags, { cacheRoot: CACHE_ROOT });
        accepted++;
      } catch (err) {
        assert.ok(err instanceof InvalidArgumentError, `not INVALID_ARGUMENT: ${err}`);
        assert.equal(err.field, "volume_capability.mount.mount_flags");
        assert.match(err.message, /^Invalid mount option "/);
        return;
      }
      if (out.cache !== undefined) assert.ok(insideCacheRoot(out.cache), out.cache);
      const prefix = out.prefix ?? "";
      assert.ok(!prefix.startsWith("/"), `absolute prefix ${prefix}`);
      assert.ok(!prefix.split("/").some((p) => p === ".." || p === "."), `prefix ${prefix}`);
    }),
    { numRuns: RUNS },
  );
  // The properties mean something only if many inputs get through.
  assert.ok(accepted > RUNS / 20, `only ${accepted} of ${RUNS} inputs were accepted`);
});

const uuid = fc.uuid();
const volumeId = fc.oneof(
  fc.string({ unit: "binary", maxLength: 80 }),
  uuid.map((u) => `csi-s3-${u}`),
  fc.tuple(fc.string({ unit: "binary", maxLength: 70 }), uuid).map(([b, u]) => `${b}/csi-s3-${u}`),
  fc.constantFrom(
    "csi-s3-../../etc",
    "../csi-s3-00000000-0000-0000-0000-000000000000",
    "bucket/csi-s3-00000000-0000-0000-0000-000000000000/../x",
    "csi-s3-00000000-0000-0000-0000-000000000000\u0000",
    "x".repeat(10 * 1024),
  ),
);

Deno.test("fuzz: parseVolumeId() returns nothing, or a volume whose parts rebuild the very ID, for any input", () => {
  fc.assert(
    fc.property(volumeId, (id) => {
      const v = parseVolumeId(id);
      if (!v) return;
      assert.equal(v.id, id);
      assert.equal(validateBucketName(v.bucket), undefined, `bucket ${v.bucket}`);
      if (v.mode === "dedicated") {
        assert.equal(v.bucket, id);
        assert.equal(v.prefix, "");
      } else {
        assert.equal(`${v.bucket}/${v.prefix.slice(0, -1)}`, id);
        assert.match(v.prefix, /^csi-s3-[0-9a-f-]{36}\/$/);
      }
    }),
    { numRuns: RUNS },
  );
});
