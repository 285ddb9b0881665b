/**
 * Credentials from CSI secrets.
 *
 * A secret map given to a call (provisioner, node-publish) must hold
 * `access_key_id` and `secret_access_key`, and may hold `session_token`;
 * anything missing is INVALID_ARGUMENT naming the key (never the value). An
 * empty or absent map means "use the driver-level credentials". Every secret
 * value seen is registered with the logger so it is masked in any log line.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors/mod.ts";
import { registerSecret } from "../log/mod.ts";
import type { Credentials } from "../s3/object_client.ts";
import { SecretKey } from "./volume_context.ts";

/** Returns credentials from `secrets`, or undefined when the map is empty. */
export function credentialsFromSecrets(
  secrets: Record<string, string> | undefined,
  what: string,
): Credentials | undefined {
  if (!secrets || Object.keys(secrets).length === 0) return undefined;
  for (const v of Object.values(secrets)) registerSecret(v);
  const accessKeyId = secrets[SecretKey.accessKeyId];
  const secretAccessKey = secrets[SecretKey.secretAccessKey];
  const sessionToken = secrets[SecretKey.sessionToken];
  const missing = [
    !accessKeyId ? SecretKey.accessKeyId : "",
    !secretAccessKey ? SecretKey.secretAccessKey : "",
  ].filter(Boolean);
  if (missing.length > 0) {
    const present = Object.keys(secrets).sort().map((k) => `"${k}"`).join(", ");
    throw new InvalidArgumentError(
      `secrets.${missing[0]}`,
      `Invalid ${what} secret: missing key ${
        missing.map((k) => `"${k}"`).join(" and ")
      } (keys present: ${present})`,
    );
  }
  const creds: Credentials = { accessKeyId, secretAccessKey };
  if (sessionToken) creds.sessionToken = sessionToken;
  return creds;
}
