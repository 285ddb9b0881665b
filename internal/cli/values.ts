/**
 * Kinds of option values: how the text of a command-line flag, or of a
 * volume's mount option, becomes a typed value and back again. The same
 * kind checks `s3csi mount --uid`, a controller's `--aws-max-attempts` and a
 * PersistentVolume's `uid=1000`, so a value means the same everywhere; each
 * caller names the option in its own error (a usage error on the command
 * line, INVALID_ARGUMENT for a volume).
 *
 * @module
 */

/** A malformed value; the message says why, the caller names the option. */
export class ValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ValueError";
  }
}

export interface Kind<T> {
  parse(raw: string): T;
  /** The text `parse` reads back: used for the flags handed to a child process. */
  format(value: T): string;
}

/** Any text, taken as given. */
export const TEXT: Kind<string> = { parse: (raw) => raw, format: (v) => v };

/** A non-negative integer in [min, max]. */
export function uint(range: { min?: number; max?: number } = {}): Kind<number> {
  return {
    parse(raw) {
      if (!/^\d+$/.test(raw)) throw new ValueError(`"${raw}" is not a non-negative integer`);
      const n = Number(raw);
      if (!Number.isSafeInteger(n)) throw new ValueError(`"${raw}" is too large`);
      if (range.min !== undefined && n < range.min) {
        throw new ValueError(`${n} is below the minimum ${range.min}`);
      }
      if (range.max !== undefined && n > range.max) {
        throw new ValueError(`${n} is above the maximum ${range.max}`);
      }
      return n;
    },
    format: String,
  };
}

/** One of a fixed list of words. */
export function oneOf<const T extends string>(values: readonly T[]): Kind<T> {
  return {
    parse(raw) {
      if (!(values as readonly string[]).includes(raw)) {
        throw new ValueError(`"${raw}" is not one of ${values.join(", ")}`);
      }
      return raw as T;
    },
    format: (v) => v,
  };
}
