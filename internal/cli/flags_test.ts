import assert from "node:assert/strict";
import { type FlagSpecs, num, parseFlags, selfCommand, str, usage, UsageError } from "./flags.ts";
import { uint } from "./values.ts";

const SPECS: FlagSpecs = {
  "endpoint-url": { type: "string", aliases: ["s3-endpoint-url"], help: "endpoint" },
  attempts: { type: "string", kind: uint({ min: 1, max: 9 }), default: "3", help: "attempts" },
  fg: { type: "boolean", short: "f", help: "foreground" },
};

Deno.test("parseFlags() files an alias under the flag's name and refuses both at once", () => {
  const { values } = parseFlags(["--s3-endpoint-url", "http://a"], SPECS);
  assert.equal(str(values, "endpoint-url"), "http://a");
  assert.equal(values["s3-endpoint-url"], undefined);
  assert.throws(
    () => parseFlags(["--s3-endpoint-url=a", "--endpoint-url=b"], SPECS),
    (err: unknown) =>
      err instanceof UsageError && /--endpoint-url and --s3-endpoint-url/.test(err.message),
  );
});

Deno.test("parseFlags() parses values and defaults by kind, naming the flag when one is bad", () => {
  assert.equal(num(parseFlags([], SPECS).values, "attempts"), 3);
  assert.equal(num(parseFlags(["--attempts", "7"], SPECS).values, "attempts"), 7);
  assert.throws(
    () => parseFlags(["--attempts=10"], SPECS),
    /Invalid value for --attempts: 10 is above the maximum 9/,
  );
  assert.throws(() => parseFlags(["--nope"], SPECS), UsageError);
});

Deno.test("usage() shows short letters, defaults and aliases", () => {
  const text = usage("s3csi x", SPECS);
  assert.match(text, /-f, --fg /);
  assert.match(text, /--attempts <value> +attempts \(default: 3\)/);
  assert.match(text, /--endpoint-url <value> +endpoint \(also --s3-endpoint-url\)/);
});

Deno.test("selfCommand() reruns the image's s3csi script itself, main.ts through deno run, a binary as is", () => {
  assert.deepEqual(selfCommand("/usr/local/bin/deno", "file:///usr/local/bin/s3csi"), [
    "/usr/local/bin/s3csi",
  ]);
  assert.deepEqual(selfCommand("/opt/deno", "file:///src/main.ts"), [
    "/opt/deno",
    "run",
    "-A",
    "/src/main.ts",
  ]);
  assert.deepEqual(selfCommand("/usr/local/bin/s3csi", "file:///src/main.ts"), [
    "/usr/local/bin/s3csi",
  ]);
});
