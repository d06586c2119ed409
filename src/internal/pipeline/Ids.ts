/**
 * Load ids and row ids (`_dlt_load_id`, `_dlt_id`) as dlt makes them, from a service: load ids read
 * the `Clock` (so tests can drive them with `TestClock`), row ids come from pooled random bytes.
 * The default instance is shared by the process, so load ids made in one process always increase.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import * as Ids from "./Ids.js" // internal: the tests swap it, users do not
 *
 * const program = Effect.gen(function* () {
 *   const ids = yield* Ids.Ids
 *   const loadId = yield* ids.loadId(Option.none()) // "1795969733.717393"
 *   const rowId = ids.rowId()                      // "Xk2c9_aQ0vLmZp"
 * })
 * ```
 *
 * @since 0.1.0
 */
import { Clock, Context, Effect, Option } from "effect"

/**
 * @since 0.1.0
 */
export interface IdsShape {
  /**
   * dlt's load id: unix seconds with six fraction digits as text (`1795969733.717393`), sorting
   * after `after` and after every id this service made.
   */
  readonly loadId: (after: Option.Option<string>) => Effect.Effect<string>
  /** a 14-character random id, the shape of dlt's `_dlt_id`; synchronous for the row hot path */
  readonly rowId: () => string
}

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
// ids are cut from a pooled block of random bytes: one getRandomValues call per 4,096 ids instead
// of one per row (it was the single largest cost of a bulk load)
const ID_LENGTH = 14 // rowId spells out its 14 characters
const ID_CODES = Uint8Array.from(ID_ALPHABET, (c) => c.charCodeAt(0))
const POOL_IDS = 4096

/**
 * A fresh id service with its own pool and its own "last load id".
 *
 * @since 0.1.0
 */
export const make = (): IdsShape => {
  const pool = new Uint8Array(ID_LENGTH * POOL_IDS)
  let offset = pool.length
  let last = ""
  const rowId = (): string => {
    if (offset + ID_LENGTH > pool.length) {
      globalThis.crypto.getRandomValues(pool)
      offset = 0
    }
    // one flat string from char codes (a += per character allocates a string per character)
    const p = offset
    offset += ID_LENGTH
    return String.fromCharCode(
      ID_CODES[pool[p]! & 63]!,
      ID_CODES[pool[p + 1]! & 63]!,
      ID_CODES[pool[p + 2]! & 63]!,
      ID_CODES[pool[p + 3]! & 63]!,
      ID_CODES[pool[p + 4]! & 63]!,
      ID_CODES[pool[p + 5]! & 63]!,
      ID_CODES[pool[p + 6]! & 63]!,
      ID_CODES[pool[p + 7]! & 63]!,
      ID_CODES[pool[p + 8]! & 63]!,
      ID_CODES[pool[p + 9]! & 63]!,
      ID_CODES[pool[p + 10]! & 63]!,
      ID_CODES[pool[p + 11]! & 63]!,
      ID_CODES[pool[p + 12]! & 63]!,
      ID_CODES[pool[p + 13]! & 63]!
    )
  }
  const loadId = (after: Option.Option<string>): Effect.Effect<string> =>
    Effect.map(Clock.currentTimeNanos, (nanos) => {
      let micros = nanos / 1000n
      for (const previous of [last, Option.getOrElse(after, () => "")]) {
        const floor = parseMicros(previous)
        if (floor !== undefined && micros <= floor) micros = floor + 1n
      }
      last = formatMicros(micros)
      return last
    })
  return { loadId, rowId }
}

const LOAD_ID = /^(\d+)(?:\.(\d+))?$/

/** a load id as microseconds; dlt's ids have up to 7 fraction digits, cut to 6 here */
const parseMicros = (id: string): bigint | undefined => {
  const match = LOAD_ID.exec(id)
  if (match === null) return undefined
  const fraction = (match[2] ?? "").padEnd(6, "0").slice(0, 6)
  return BigInt(match[1]!) * 1_000_000n + BigInt(fraction)
}

const formatMicros = (micros: bigint): string =>
  `${micros / 1_000_000n}.${String(micros % 1_000_000n).padStart(6, "0")}`

/**
 * The ids a pipeline uses; the default is one instance per process.
 *
 * @since 0.1.0
 */
export class Ids extends Context.Reference<Ids>()("pipestate/Ids", { defaultValue: make }) {}
