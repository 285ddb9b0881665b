import assert from "node:assert/strict";
import {
  defaultFsConfig,
  MIB,
  readBudgetBytes,
  ttlsOf,
  validateFsConfig,
  writeBudgetBytes,
} from "./config.ts";

Deno.test("ttlsOf() gives 1 s kernel TTLs for minimal and never serves lookups from cache", () => {
  assert.deepEqual(ttlsOf({ kind: "minimal" }), {
    kernelMs: 1000,
    statMs: 1000,
    serveFromCache: false,
    negativeMs: 0,
  });
  const s = ttlsOf({ kind: "seconds", s: 60 });
  assert.equal(s.kernelMs, 60_000);
  assert.equal(s.serveFromCache, true);
  assert.equal(ttlsOf({ kind: "seconds", s: 0 }).kernelMs, 1000);
  assert.equal(ttlsOf({ kind: "indefinite" }).statMs, Number.POSITIVE_INFINITY);
});

Deno.test("writeBudgetBytes() and readBudgetBytes() split the usable memory in half", () => {
  const c = defaultFsConfig("b");
  // The default 256 MiB: usable = 256 - 128 = 128 MiB; half each.
  assert.equal(c.maxMemory, 256 * MIB);
  assert.equal(writeBudgetBytes(c), 64 * MIB);
  assert.equal(readBudgetBytes(c), 64 * MIB);
  // usable = 512 - 128 = 384 MiB.
  assert.equal(writeBudgetBytes(defaultFsConfig("b", { maxMemory: 512 * MIB })), 192 * MIB);
  // A quarter is reserved once maxMemory passes 1 GiB: usable = 2048 - 512 = 1536 MiB.
  assert.equal(readBudgetBytes(defaultFsConfig("b", { maxMemory: 2048 * MIB })), 768 * MIB);
  // Nothing usable: still one writer's two parts.
  assert.equal(writeBudgetBytes(defaultFsConfig("b", { maxMemory: 1 })), 16 * MIB);
});

Deno.test("validateFsConfig() rejects a prefix without a trailing slash", () => {
  assert.throws(() => validateFsConfig(defaultFsConfig("b", { prefix: "p" })), RangeError);
  validateFsConfig(defaultFsConfig("b", { prefix: "p/" }));
});
