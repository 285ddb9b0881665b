/**
 * Static credentials from the standard AWS environment variables, shared by
 * every role (driver-level credentials of the controller and node, and the
 * first source of `s3csi mount`). Every value read is registered with the
 * logger so it is masked in any log line.
 *
 * @module
 */
import { registerSecret } from "../log/mod.ts";
import type { Credentials } from "./object_client.ts";

/** `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`), or undefined. */
export function credentialsFromEnv(env: { get(k: string): string | undefined } = Deno.env):
  | Credentials
  | undefined {
  const accessKeyId = env.get("AWS_ACCESS_KEY_ID");
  const secretAccessKey = env.get("AWS_SECRET_ACCESS_KEY");
  if (!accessKeyId || !secretAccessKey) return undefined;
  registerSecret(secretAccessKey);
  registerSecret(accessKeyId);
  const creds: Credentials = { accessKeyId, secretAccessKey };
  const sessionToken = env.get("AWS_SESSION_TOKEN");
  if (sessionToken) {
    registerSecret(sessionToken);
    creds.sessionToken = sessionToken;
  }
  return creds;
}
