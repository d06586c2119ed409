/**
 * Incremental loading: a cursor over one field of the records (an `updated_at`, an id) whose last
 * value is kept in the resource state, so that each run loads only the records past the previous
 * run's last value (dlt's `dlt.sources.incremental`).
 *
 * The state lives at `incremental.<path>` in the resource slot, in dlt's layout
 * `{ initial_value, last_value, unique_hashes, start_value }`, so a dataset's state can be read by
 * dlt and back. Rows whose cursor equals the last value are remembered by a hash of their primary
 * key (or of the whole row) and skipped on the next run: a cursor with coarse values (dates, whole
 * seconds) loses no row and loads none twice.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { Incremental, Resource } from "effect-pipestate"
 *
 * const updatedAt = Incremental.cursor({ path: "updated_at", initialValue: new Date("2024-01-01T00:00:00Z") })
 *
 * const issues = Resource.make(
 *   { name: "issues", writeDisposition: "merge", primaryKey: ["id"] },
 *   // `run.startValue` goes to the API; the rows it returns are filtered and the cursor advanced for you
 *   Incremental.stream(updatedAt, (run) => fetchIssuesSince(run.startValue))
 * )
 * ```
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { BigDecimal, Chunk, Effect, Either, Option, Schema, Stream } from "effect"
import { ResourceState, type ResourceStateShape } from "../context/ResourceState.js"
import type * as StateSlot from "../internal/context/StateSlot.js"
import * as CheckpointHold from "../internal/pipeline/CheckpointHold.js"
import * as StateValue from "../state/StateValue.js"

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/**
 * The values a cursor can hold. A cursor's kind is the kind of its `initialValue`; the rows' values
 * must be of that kind, with these conversions so that JSON payloads work as they come:
 *
 * | cursor       | row values accepted                                              | stored as          |
 * | ------------ | ---------------------------------------------------------------- | ------------------ |
 * | `number`     | finite numbers                                                   | number             |
 * | `bigint`     | bigints, safe integer numbers                                    | int (typed decimal past 64 bits) |
 * | `string`     | strings (compared by code points, as Python and dlt compare)     | string             |
 * | `Timestamp`  | Timestamps, valid Dates, ISO 8601 text (no offset means UTC)     | datetime (typed)   |
 * | `Date`       | the same as `Timestamp`                                          | datetime (typed)   |
 * | `CalendarDate` | CalendarDates, `YYYY-MM-DD` text                               | date (typed)       |
 * | `BigDecimal` | BigDecimals, finite numbers, bigints, decimal text               | decimal (typed)    |
 *
 * Datetime cursors compare with microseconds (a `Timestamp` keeps them; PostgreSQL `timestamptz`
 * read as text does too), and store the row's value with its offset, as dlt does. A `Date` cursor
 * works the same way; its `startValue` and `lastValue` are `Date`s (milliseconds: rounded down for
 * `max`, up for `min`, so that a query from them includes the boundary rows, which the cursor then
 * filters exactly).
 *
 * @since 0.1.0
 */
export type CursorValue =
  | number
  | bigint
  | string
  | Date
  | StateValue.Timestamp
  | StateValue.CalendarDate
  | BigDecimal.BigDecimal

/**
 * The type of the cursor built from an `initialValue` of type `V`: literal types are widened, so
 * `initialValue: 0` gives a `number` cursor.
 *
 * @since 0.1.0
 */
export type Widen<V> = V extends number ? number : V extends string ? string : V extends bigint ? bigint : V

/**
 * What to do with a row that has no value (absent or `null`) at the cursor path.
 *
 * - `raise`: fail with {@link IncrementalCursorMissing} (the default)
 * - `include`: keep the row; it does not move the last value
 * - `exclude`: drop the row
 *
 * @since 0.1.0
 */
export type OnCursorValueMissing = "raise" | "include" | "exclude"

/**
 * @since 0.1.0
 */
export interface CursorOptions<V extends CursorValue> {
  /** the field holding the cursor, `a.b` for a nested field (through objects); also the state key */
  readonly path: string
  /** the start value of the first run; later runs start from the stored last value */
  readonly initialValue: V
  /** `max` (default): the cursor moves up, rows below the start are old; `min`: it moves down */
  readonly lastValueFunc?: "max" | "min"
  /**
   * Loads the window [initialValue, endValue) and nothing else (a backfill): rows at or past
   * `endValue` are dropped, the stored state is neither read nor written.
   */
  readonly endValue?: NoInfer<Widen<V>>
  /**
   * The fields (paths) identifying a row, to recognize the rows at the boundary loaded by the last
   * run. Default: the whole row. `[]` turns deduplication off: rows equal to the start value are
   * always loaded again (fine with a `merge` resource).
   */
  readonly primaryKey?: string | ReadonlyArray<string>
  /** default `raise` */
  readonly onCursorValueMissing?: OnCursorValueMissing
  /**
   * How many boundary hashes the state keeps (default 10,000); past it the oldest are dropped and
   * the rows they stood for may be loaded again on the next run.
   */
  readonly maxUniqueHashes?: number
  /**
   * The order the rows come in, by the cursor (dlt's `row_order`): `"asc"` or `"desc"`. It matters
   * for runs with checkpoints. When the rows come in the direction the cursor moves (`"asc"` with
   * `max`, `"desc"` with `min`), checkpoints commit the cursor as it goes and a killed run resumes
   * from its last checkpoint; a row that goes back against that order fails with
   * {@link IncrementalRowOrder}. Otherwise (default: no order promised) the resource's rows and
   * cursor wait for the run's final commit: a value seen early would claim rows below it that are
   * still to come, and a run killed after a checkpoint would never load them.
   */
  readonly rowOrder?: "asc" | "desc"
}

/**
 * A cursor definition. It holds no state: every {@link Cursor.start} reads the resource state anew.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Incremental, Resource } from "effect-pipestate"
 *
 * const seq = Incremental.cursor({ path: "seq", initialValue: 0 })
 *
 * // by hand, when the start value is needed before the stream is built
 * const changes = Resource.make(
 *   { name: "changes" },
 *   Stream.unwrap(
 *     Effect.gen(function* () {
 *       const run = yield* seq.start
 *       const pages = yield* listPagesAfter(run.startValue)
 *       return run.filter(Stream.fromIterable(pages).pipe(Stream.flattenIterables))
 *     })
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 */
export interface Cursor<V extends CursorValue> {
  readonly path: string
  readonly initialValue: V
  readonly lastValueFunc: "max" | "min"
  readonly endValue: V | undefined
  readonly primaryKey: ReadonlyArray<string> | undefined
  readonly onCursorValueMissing: OnCursorValueMissing
  readonly maxUniqueHashes: number
  /**
   * Begins one run of the cursor in the current resource: reads the stored state (writing the
   * initial one on the first run) and returns the run's start value and filter. Call it once per
   * resource run; {@link stream} does it for you.
   */
  readonly start: Effect.Effect<IncrementalRun<V>, IncrementalError, ResourceState>
}

/**
 * One run of a cursor.
 *
 * @since 0.1.0
 */
export interface IncrementalRun<V extends CursorValue> {
  readonly resource: string
  readonly path: string
  /** the stored last value, or `initialValue` on the first run (or with `endValue`): pass it to the API or query */
  readonly startValue: V
  readonly endValue: V | undefined
  /** the last value so far in this run (it moves as filtered rows pass) */
  readonly lastValue: Effect.Effect<V>
  /**
   * Keeps the rows past the start value (and before `endValue`), drops the boundary rows loaded by
   * the last run, and records the new last value in the resource state after every chunk. Rows may
   * come in any order. Several streams of one run may be filtered: they share the last value.
   */
  readonly filter: <A, E, R>(self: Stream.Stream<A, E, R>) => Stream.Stream<A, E | IncrementalError, R>
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/**
 * A row has no value at the cursor path and the cursor's `onCursorValueMissing` is `raise`.
 *
 * @since 0.1.0
 */
export class IncrementalCursorMissing extends Schema.TaggedError<IncrementalCursorMissing>()(
  "IncrementalCursorMissing",
  {
    resource: Schema.String,
    path: Schema.String,
    rowIndex: Schema.Number,
    found: Schema.Literal("absent", "null")
  }
) {
  override get message(): string {
    return (
      `resource ${this.resource}: row ${this.rowIndex} has no value at the cursor path "${this.path}" ` +
      `(${this.found === "null" ? "it is null" : "the field is absent"}). Pass onCursorValueMissing: "include" ` +
      `to load such rows without moving the cursor, or "exclude" to drop them`
    )
  }
}

/**
 * A row's cursor value goes back against the cursor's declared `rowOrder` (a state already
 * advanced past it may have been committed by a checkpoint, so it cannot be loaded safely).
 *
 * @since 0.3.0
 */
export class IncrementalRowOrder extends Schema.TaggedError<IncrementalRowOrder>()("IncrementalRowOrder", {
  resource: Schema.String,
  path: Schema.String,
  rowIndex: Schema.Number,
  rowOrder: Schema.Literal("asc", "desc"),
  value: Schema.String,
  last: Schema.String
}) {
  override get message(): string {
    return (
      `resource ${this.resource}: row ${this.rowIndex} has ${this.value} at the cursor path "${this.path}" after ` +
      `${this.last}, against the declared rowOrder "${this.rowOrder}". Sort the rows, or remove rowOrder (a run ` +
      "with checkpoints then keeps this resource's rows and cursor for its final commit)"
    )
  }
}

/**
 * A row's cursor value is not of the cursor's kind (the kind of its `initialValue`).
 *
 * @since 0.1.0
 */
export class IncrementalCursorTypeMismatch extends Schema.TaggedError<IncrementalCursorTypeMismatch>()(
  "IncrementalCursorTypeMismatch",
  {
    resource: Schema.String,
    path: Schema.String,
    rowIndex: Schema.Number,
    expected: Schema.String,
    actual: Schema.String
  }
) {
  override get message(): string {
    return (
      `resource ${this.resource}: row ${this.rowIndex} has ${this.actual} at the cursor path "${this.path}", ` +
      `but the cursor compares ${this.expected} values (the kind of its initialValue). Convert the values ` +
      "in the stream (Stream.map) or give the cursor an initialValue of their kind"
    )
  }
}

/**
 * A row lacks a field of the cursor's `primaryKey`, so its boundary hash cannot be computed.
 *
 * @since 0.1.0
 */
export class IncrementalPrimaryKeyMissing extends Schema.TaggedError<IncrementalPrimaryKeyMissing>()(
  "IncrementalPrimaryKeyMissing",
  {
    resource: Schema.String,
    path: Schema.String,
    key: Schema.String,
    rowIndex: Schema.Number
  }
) {
  override get message(): string {
    return (
      `resource ${this.resource}: row ${this.rowIndex} has no field "${this.key}" of the primary key of ` +
      `the cursor "${this.path}". Fix the primaryKey option, or pass primaryKey: [] to skip deduplication`
    )
  }
}

/**
 * The stored state of a cursor cannot be used by this cursor (another kind of value, a broken
 * layout).
 *
 * @since 0.1.0
 */
export class InvalidIncrementalState extends Schema.TaggedError<InvalidIncrementalState>()("InvalidIncrementalState", {
  statePath: Schema.String,
  issue: Schema.String
}) {
  override get message(): string {
    return (
      `the incremental state at ${this.statePath} cannot be used: ${this.issue}. Drop the resource's state ` +
      "(`pipestate pipeline <name> drop <resource>`) to start again from initialValue, or fix the cursor's options"
    )
  }
}

/**
 * The options of a cursor are inconsistent (an `endValue` before `initialValue`, an empty path, ...).
 *
 * @since 0.1.0
 */
export class InvalidIncrementalOptions extends Schema.TaggedError<InvalidIncrementalOptions>()(
  "InvalidIncrementalOptions",
  {
    path: Schema.String,
    reason: Schema.String
  }
) {
  override get message(): string {
    return `incremental cursor "${this.path}": ${this.reason}`
  }
}

/**
 * Any failure of an incremental cursor.
 *
 * @since 0.1.0
 */
export type IncrementalError =
  | IncrementalRowOrder
  | IncrementalCursorMissing
  | IncrementalCursorTypeMismatch
  | IncrementalPrimaryKeyMissing
  | InvalidIncrementalState
  | InvalidIncrementalOptions
  | StateSlot.StateWriteError

// ---------------------------------------------------------------------------------------------
// Cursor kinds
// ---------------------------------------------------------------------------------------------

interface Kind {
  readonly name: string
  /** a row's value as a cursor value of this kind, `undefined` when it is of another kind */
  readonly fromRow: (raw: unknown) => CursorValue | undefined
  readonly fromState: (stored: StateValue.StateValue) => CursorValue | undefined
  readonly toState: (value: CursorValue) => StateValue.StateValue
  /** values given here always come from this kind's `fromRow`/`fromState` or a checked option */
  readonly compare: (a: CursorValue, b: CursorValue) => number
  readonly format: (value: CursorValue) => string
}

const order = <T>(a: T, b: T): number => (a < b ? -1 : a > b ? 1 : 0)

const DECIMAL_TEXT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/

const numberKind: Kind = {
  name: "number",
  fromRow: (raw) => (typeof raw === "number" && Number.isFinite(raw) ? raw : undefined),
  fromState: (stored) => (typeof stored === "number" && Number.isFinite(stored) ? stored : undefined),
  toState: (value) => value as number,
  compare: (a, b) => order(a as number, b as number),
  format: (value) => String(value)
}

const bigintFromDecimal = (d: BigDecimal.BigDecimal): bigint | undefined => {
  const n = BigDecimal.normalize(d)
  return n.scale <= 0 ? n.value * 10n ** BigInt(-n.scale) : undefined
}

const bigintKind: Kind = {
  name: "bigint",
  fromRow: (raw) =>
    typeof raw === "bigint" ? raw : typeof raw === "number" && Number.isSafeInteger(raw) ? BigInt(raw) : undefined,
  fromState: (stored) =>
    typeof stored === "bigint"
      ? stored
      : typeof stored === "number" && Number.isSafeInteger(stored)
        ? BigInt(stored)
        : BigDecimal.isBigDecimal(stored)
          ? bigintFromDecimal(stored)
          : undefined,
  // an int, as dlt stores an int cursor; past 64 bits (which dlt cannot write) a typed decimal
  toState: (value) =>
    (value as bigint) >= -(2n ** 63n) && (value as bigint) <= 2n ** 64n - 1n
      ? (value as bigint)
      : BigDecimal.fromBigInt(value as bigint),
  compare: (a, b) => order(a as bigint, b as bigint),
  format: (value) => `${value as bigint}n`
}

// strings by Unicode code points, as Python compares them (dlt's max/min): JS `<` compares UTF-16
// code units, which puts a character above U+FFFF (a surrogate pair, 0xD800..0xDFFF) before
// U+E000..U+FFFF
const compareCodePoints = (a: string, b: string): number => {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    const xPair = x >= 0xd800 && x <= 0xdfff
    const yPair = y >= 0xd800 && y <= 0xdfff
    if (xPair !== yPair) return xPair ? 1 : -1
    return x < y ? -1 : 1
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0
}

const stringKind: Kind = {
  name: "string",
  fromRow: (raw) => (typeof raw === "string" ? raw : undefined),
  fromState: (stored) => (typeof stored === "string" ? stored : undefined),
  toState: (value) => value as string,
  compare: (a, b) => compareCodePoints(a as string, b as string),
  format: (value) => JSON.stringify(value)
}

const validDate = (value: unknown): value is Date => value instanceof Date && !Number.isNaN(value.getTime())

const validTimestamp = (value: unknown): value is StateValue.Timestamp =>
  value instanceof StateValue.Timestamp && StateValue.isStateValue(value)

// a datetime of a row or of the state as a Timestamp: Dates are UTC, text without offset is naive
// (compared as UTC, as dlt does)
const toTimestamp = (raw: unknown): StateValue.Timestamp | undefined => {
  if (validTimestamp(raw)) return raw
  if (validDate(raw)) return StateValue.Timestamp.fromDate(raw)
  if (typeof raw === "string") return Either.getOrUndefined(StateValue.Timestamp.parse(raw))
  return undefined
}

const timestampKind: Kind = {
  name: "Timestamp",
  fromRow: toTimestamp,
  fromState: (stored) => (validTimestamp(stored) || validDate(stored) ? toTimestamp(stored) : undefined),
  toState: (value) => value as StateValue.Timestamp,
  compare: (a, b) => StateValue.Timestamp.compare(a as StateValue.Timestamp, b as StateValue.Timestamp),
  format: (value) => String(value)
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/

// a Date cursor: a Timestamp cursor whose values are all UTC (rows' text without offset, or a date
// alone, is read as UTC, so that the stored value is never naive where Dates are aware); its options
// and the values given back to the user are Dates
const dateKind: Kind = {
  ...timestampKind,
  name: "Date",
  fromRow: (raw) => {
    const text = typeof raw === "string" && DATE_ONLY.test(raw) ? `${raw}T00:00:00` : raw
    const value = toTimestamp(text)
    return value?.isNaive ? value.withOffset(0) : value
  }
}

const calendarDateKind: Kind = {
  name: "CalendarDate",
  fromRow: (raw) =>
    raw instanceof StateValue.CalendarDate
      ? raw
      : typeof raw === "string"
        ? Either.getOrUndefined(StateValue.makeCalendarDate(raw))
        : undefined,
  fromState: (stored) => (stored instanceof StateValue.CalendarDate ? stored : undefined),
  toState: (value) => value as StateValue.CalendarDate,
  compare: (a, b) => order((a as StateValue.CalendarDate).iso, (b as StateValue.CalendarDate).iso),
  format: (value) => (value as StateValue.CalendarDate).iso
}

const decimalKind: Kind = {
  name: "BigDecimal",
  fromRow: (raw) => {
    if (BigDecimal.isBigDecimal(raw)) return raw
    if (typeof raw === "number") return Number.isFinite(raw) ? BigDecimal.unsafeFromNumber(raw) : undefined
    if (typeof raw === "bigint") return BigDecimal.fromBigInt(raw)
    if (typeof raw === "string" && DECIMAL_TEXT.test(raw)) return Option.getOrUndefined(BigDecimal.fromString(raw))
    return undefined
  },
  fromState: (stored) =>
    BigDecimal.isBigDecimal(stored)
      ? stored
      : typeof stored === "number" && Number.isFinite(stored)
        ? BigDecimal.unsafeFromNumber(stored)
        : undefined,
  toState: (value) => value as BigDecimal.BigDecimal,
  compare: (a, b) => BigDecimal.Order(a as BigDecimal.BigDecimal, b as BigDecimal.BigDecimal),
  format: (value) => BigDecimal.format(value as BigDecimal.BigDecimal)
}

const kindOf = (value: unknown): Kind | undefined => {
  switch (typeof value) {
    case "number":
      return Number.isFinite(value) ? numberKind : undefined
    case "bigint":
      return bigintKind
    case "string":
      return stringKind
    case "object":
      return validDate(value)
        ? dateKind
        : validTimestamp(value)
          ? timestampKind
          : value instanceof StateValue.CalendarDate
            ? calendarDateKind
            : BigDecimal.isBigDecimal(value)
              ? decimalKind
              : undefined
    default:
      return undefined
  }
}

const describeValue = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? "an invalid Date" : "a Date"
  if (value instanceof StateValue.Timestamp) return `the Timestamp ${value}`
  if (value instanceof StateValue.CalendarDate) return `the date ${value.iso}`
  if (BigDecimal.isBigDecimal(value)) return "a BigDecimal"
  if (typeof value === "string")
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`
  if (typeof value === "number") return `the number ${value}`
  if (typeof value === "object") return "an object"
  return `a ${typeof value}`
}

// ---------------------------------------------------------------------------------------------
// Rows: paths and hashes
// ---------------------------------------------------------------------------------------------

const ABSENT: unique symbol = Symbol("Incremental/ABSENT")

const lookup = (row: unknown, segments: ReadonlyArray<string>): unknown => {
  let current = row
  for (const segment of segments) {
    if (typeof current !== "object" || current === null || Array.isArray(current)) return ABSENT
    if (!Object.hasOwn(current, segment)) return ABSENT
    current = (current as Record<string, unknown>)[segment]
  }
  return current === undefined ? ABSENT : current
}

// dlt's untyped JSON of a row value (`json.dumps(value, sort_keys=True)` with orjson): compact, keys
// sorted by code point, no marks. A Decimal is its text, bytes their base64, a UUID its text, a
// date its ISO text. A `Date` is a stdlib UTC datetime, which orjson writes with `Z`; a `Timestamp`
// is what dlt's state gives back (pendulum), written by `isoformat()` (`+00:00`). Values JSON has
// no form for are written in a form of our own, so that every row still hashes the same way.
const untyped = (value: unknown, ancestors: Set<object>): string => {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value)
    case "number":
      return Number.isFinite(value)
        ? Number.isSafeInteger(value) && !Object.is(value, -0)
          ? `${value}`
          : StateValue.formatFloat(value)
        : "null"
    case "bigint":
      return `${value}`
    case "boolean":
      return value ? "true" : "false"
    case "object": {
      if (value === null) return "null"
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) return '"Invalid Date"'
        const t = StateValue.Timestamp.fromDate(value)
        return JSON.stringify(`${t.withOffset(null)}Z`)
      }
      if (value instanceof StateValue.Timestamp) return JSON.stringify(String(value))
      if (value instanceof StateValue.Float) return StateValue.formatFloat(value.value)
      if (BigDecimal.isBigDecimal(value) || value instanceof StateValue.SpecialDecimal) {
        const text = Either.getOrUndefined(StateValue.stringify(value))
        return text === undefined ? '"NaN"' : JSON.stringify((JSON.parse(text) as string).slice(1))
      }
      if (value instanceof StateValue.Uuid) return JSON.stringify(value.value)
      if (value instanceof StateValue.CalendarDate || value instanceof StateValue.TimeOfDay) {
        return JSON.stringify(value.iso)
      }
      if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString("base64"))
      if (ancestors.has(value)) return '"[Circular]"'
      ancestors.add(value)
      let text: string
      if (Array.isArray(value)) {
        text = `[${value.map((item) => (item === undefined ? "null" : untyped(item, ancestors))).join(",")}]`
      } else if (value instanceof Map) {
        const entries = [...value.entries()].map(([k, v]) => `[${untyped(k, ancestors)},${untyped(v, ancestors)}]`)
        text = `{"$map":[${entries.sort().join(",")}]}`
      } else if (value instanceof Set) {
        text = `{"$set":[${[...value]
          .map((item) => untyped(item, ancestors))
          .sort()
          .join(",")}]}`
      } else {
        const record = value as Record<string, unknown>
        const parts: Array<string> = []
        for (const key of sortByCodePoint(Object.keys(record))) {
          const item = record[key]
          if (item === undefined || typeof item === "function" || typeof item === "symbol") continue
          parts.push(`${JSON.stringify(key)}:${untyped(item, ancestors)}`)
        }
        text = `{${parts.join(",")}}`
      }
      ancestors.delete(value)
      return text
    }
    default:
      return "null"
  }
}

const codePointCompare = (a: string, b: string): number => {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i)
    let y = b.charCodeAt(i)
    if (x !== y) {
      // UTF-16 order differs from code point order above U+D7FF
      if (x >= 0xd800 && y >= 0xd800) {
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000
      }
      return x - y
    }
  }
  return a.length - b.length
}

const sortByCodePoint = (keys: Array<string>): Array<string> => keys.sort(codePointCompare)

/**
 * dlt's boundary-dedup hash of a row (`IncrementalTransform.compute_unique_value`): base64 of the
 * first 15 bytes of SHAKE-128 over dlt's untyped JSON (sorted keys) of the key value — the cell for
 * a single column (`primaryKey` a string), a JSON array in key order for a list of columns, the
 * whole row for `undefined` — without `=` padding (20 characters). A `Date` cell is a UTC
 * datetime as dlt's database sources yield it; a `Timestamp` is written with its offset.
 *
 * @example
 * ```ts
 * Incremental.uniqueHash({ id: 1, code: "A-1" }, "id") // "669czW83KR00ut4bv/U5"
 * ```
 *
 * @since 0.1.0
 */
export const uniqueHash = (row: unknown, primaryKey?: string | ReadonlyArray<string>): string => {
  const value =
    primaryKey === undefined
      ? row
      : typeof primaryKey === "string"
        ? lookupOrNull(row, primaryKey)
        : primaryKey.map((key) => lookupOrNull(row, key))
  return digest128(untyped(value, new Set()))
}

const lookupOrNull = (row: unknown, key: string): unknown => {
  const value = lookup(row, key.split("."))
  return value === ABSENT ? null : value
}

const digest128 = (text: string): string =>
  createHash("shake128", { outputLength: 15 }).update(text, "utf8").digest("base64").replace(/=+$/, "")

// The hash of earlier pipestate versions (SHA-256 of a canonical text, 16 characters): read in a
// stored state, honoured for that run, then replaced by dlt's hashes.
const legacyCanonical = (value: unknown, ancestors: Set<object>): string => {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value)
    case "number":
      return Number.isFinite(value) ? JSON.stringify(value) : String(value)
    case "bigint":
      return `${value}n`
    case "boolean":
      return value ? "true" : "false"
    case "object": {
      if (value === null) return "null"
      if (value instanceof Date) {
        return JSON.stringify(`\uF027${Number.isNaN(value.getTime()) ? "Invalid Date" : value.toISOString()}`)
      }
      if (BigDecimal.isBigDecimal(value))
        return JSON.stringify(`\uF026${BigDecimal.format(BigDecimal.normalize(value))}`)
      if (value instanceof Uint8Array) return JSON.stringify(`\uF02B${Buffer.from(value).toString("base64")}`)
      if (ancestors.has(value)) return '"[Circular]"'
      ancestors.add(value)
      let text: string
      if (Array.isArray(value)) {
        text = `[${value.map((item) => (item === undefined ? "null" : legacyCanonical(item, ancestors))).join(",")}]`
      } else if (value instanceof Map) {
        const entries = [...value.entries()].map(
          ([k, v]) => `[${legacyCanonical(k, ancestors)},${legacyCanonical(v, ancestors)}]`
        )
        text = `{"$map":[${entries.sort().join(",")}]}`
      } else if (value instanceof Set) {
        text = `{"$set":[${[...value]
          .map((item) => legacyCanonical(item, ancestors))
          .sort()
          .join(",")}]}`
      } else {
        const record = value as Record<string, unknown>
        const parts: Array<string> = []
        for (const key of Object.keys(record).sort()) {
          const item = record[key]
          if (item === undefined || typeof item === "function" || typeof item === "symbol") continue
          parts.push(`${JSON.stringify(key)}:${legacyCanonical(item, ancestors)}`)
        }
        text = `{${parts.join(",")}}`
      }
      ancestors.delete(value)
      return text
    }
    default:
      return "null"
  }
}

const legacyDigest = (value: unknown): string =>
  createHash("sha256").update(legacyCanonical(value, new Set())).digest("base64").slice(0, 16)

// a hash written by an earlier pipestate version (dlt's have 20 characters)
const isLegacyHash = (hash: string): boolean => hash.length === 16

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/** dlt warns past this many rows sharing the last value */
const HASH_WARNING_THRESHOLD = 200
const DEFAULT_MAX_UNIQUE_HASHES = 10_000

interface Config {
  readonly path: string
  readonly segments: ReadonlyArray<string>
  readonly kind: Kind
  readonly sign: 1 | -1
  readonly initialValue: CursorValue
  readonly endValue: CursorValue | undefined
  /** `undefined`: the whole row; `[]`: no deduplication */
  readonly primaryKey: ReadonlyArray<{ readonly name: string; readonly segments: ReadonlyArray<string> }> | undefined
  /** the primary key was given as one column name (dlt hashes the cell, not a one-item list) */
  readonly singleKey: boolean
  readonly onMissing: OnCursorValueMissing
  readonly maxUniqueHashes: number
  readonly rowOrder: "asc" | "desc" | undefined
  /** the rows come in the direction the cursor moves: the state may advance with each chunk */
  readonly eager: boolean
}

const splitPath = (path: string): ReadonlyArray<string> | undefined => {
  const segments = path.split(".")
  return segments.every((s) => s !== "") ? segments : undefined
}

const configure = <V extends CursorValue>(
  options: CursorOptions<V>
): Either.Either<Config, InvalidIncrementalOptions> => {
  const path = options.path
  const invalid = (reason: string) => Either.left(new InvalidIncrementalOptions({ path, reason }))
  const segments = splitPath(path)
  if (segments === undefined)
    return invalid("the path must be field names joined by dots, e.g. `updated_at` or `meta.updated_at`")
  const kind = kindOf(options.initialValue)
  if (kind === undefined) {
    return invalid(
      `initialValue is ${describeValue(options.initialValue)}; a cursor holds a finite number, bigint, string, valid Date or BigDecimal`
    )
  }
  const sign = (options.lastValueFunc ?? "max") === "max" ? 1 : -1
  // values inside the cursor are the kind's own (a Date cursor works on Timestamps)
  const initialValue = kind.fromRow(options.initialValue)!
  const endValue = options.endValue === undefined ? undefined : kind.fromRow(options.endValue)
  if (options.endValue !== undefined) {
    if (kindOf(options.endValue) !== kind || endValue === undefined) {
      return invalid(
        `endValue is ${describeValue(options.endValue)}, but initialValue is a ${kind.name}: give both the same kind`
      )
    }
    if (sign * kind.compare(endValue, initialValue) <= 0) {
      return invalid(
        `endValue ${kind.format(endValue)} must be ${sign === 1 ? "greater" : "less"} than initialValue ` +
          `${kind.format(initialValue)} (lastValueFunc "${sign === 1 ? "max" : "min"}"): the window [initialValue, endValue) is empty`
      )
    }
  }
  const keys =
    options.primaryKey === undefined
      ? undefined
      : typeof options.primaryKey === "string"
        ? [options.primaryKey]
        : options.primaryKey
  const primaryKey: Array<{ name: string; segments: ReadonlyArray<string> }> = []
  for (const name of keys ?? []) {
    const keySegments = splitPath(name)
    if (keySegments === undefined) return invalid(`the primary key field ${JSON.stringify(name)} is not a field path`)
    primaryKey.push({ name, segments: keySegments })
  }
  const maxUniqueHashes = options.maxUniqueHashes ?? DEFAULT_MAX_UNIQUE_HASHES
  if (!Number.isSafeInteger(maxUniqueHashes) || maxUniqueHashes < 1) {
    return invalid(`maxUniqueHashes must be a positive integer, got ${maxUniqueHashes}`)
  }
  const rowOrder = options.rowOrder
  if (rowOrder !== undefined && rowOrder !== "asc" && rowOrder !== "desc") {
    return invalid(`rowOrder must be "asc" or "desc", got ${JSON.stringify(rowOrder)}`)
  }
  return Either.right({
    path,
    segments,
    kind,
    sign,
    initialValue,
    endValue,
    primaryKey: keys === undefined ? undefined : primaryKey,
    singleKey: typeof options.primaryKey === "string",
    onMissing: options.onCursorValueMissing ?? "raise",
    maxUniqueHashes,
    rowOrder,
    eager: rowOrder === (sign === 1 ? "asc" : "desc")
  })
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

const STATE_KEY = "incremental"

type StateObject = { readonly [key: string]: StateValue.StateValue }

const isRecord = (value: StateValue.StateValue | undefined): value is StateObject =>
  typeof value === "object" &&
  value !== null &&
  !Array.isArray(value) &&
  (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null)

interface Stored {
  readonly initialValue: StateValue.StateValue
  readonly lastValue: CursorValue
  readonly uniqueHashes: ReadonlyArray<string>
}

const entryPath = (slotPath: string, path: string): string => `${slotPath}.${STATE_KEY}[${JSON.stringify(path)}]`

const readStored = (
  slot: ResourceStateShape,
  config: Config
): Effect.Effect<Option.Option<Stored>, InvalidIncrementalState> =>
  Effect.flatMap(slot.get(STATE_KEY), (current) => {
    const where = entryPath(slot.path, config.path)
    const invalid = (issue: string) => Effect.fail(new InvalidIncrementalState({ statePath: where, issue }))
    if (Option.isNone(current)) return Effect.succeedNone
    if (!isRecord(current.value)) {
      return Effect.fail(
        new InvalidIncrementalState({
          statePath: `${slot.path}.${STATE_KEY}`,
          issue: `expected an object keyed by cursor path, found ${describeValue(current.value)}`
        })
      )
    }
    const entry = Object.hasOwn(current.value, config.path) ? current.value[config.path] : undefined
    if (entry === undefined) return Effect.succeedNone
    if (!isRecord(entry)) return invalid(`expected an object, found ${describeValue(entry)}`)
    const stored = entry.last_value
    // dlt writes `null` when a cursor has no initial value: such a cursor starts from ours
    if (stored === undefined || stored === null) return Effect.succeedNone
    const lastValue = config.kind.fromState(stored)
    if (lastValue === undefined) {
      return invalid(`last_value is ${describeValue(stored)}, but this cursor holds ${config.kind.name} values`)
    }
    const hashes = entry.unique_hashes ?? []
    if (!Array.isArray(hashes) || !hashes.every((h): h is string => typeof h === "string")) {
      return invalid(`unique_hashes is ${describeValue(hashes)}, expected an array of strings`)
    }
    return Effect.succeedSome({
      initialValue: entry.initial_value ?? config.kind.toState(config.initialValue),
      lastValue,
      uniqueHashes: hashes as ReadonlyArray<string>
    })
  })

const writeEntry = (
  slot: ResourceStateShape,
  config: Config,
  entry: StateObject,
  onlyIfAbsent: boolean
): Effect.Effect<void, InvalidIncrementalState | StateSlot.StateWriteError> =>
  slot.modify(STATE_KEY, (current) => {
    const cursors = Option.getOrElse(current, (): StateValue.StateValue => ({}))
    if (!isRecord(cursors)) {
      return Either.left(
        new InvalidIncrementalState({
          statePath: `${slot.path}.${STATE_KEY}`,
          issue: `expected an object keyed by cursor path, found ${describeValue(cursors)}`
        })
      )
    }
    const previous = Object.hasOwn(cursors, config.path) ? cursors[config.path] : undefined
    const present = isRecord(previous) && previous.last_value !== undefined && previous.last_value !== null
    if (onlyIfAbsent && present) return Either.right([undefined, Option.none()] as const)
    // keys dlt may add later survive our writes
    const merged = isRecord(previous) ? { ...previous, ...entry } : entry
    return Either.right([undefined, Option.some<unknown>({ ...cursors, [config.path]: merged })] as const)
  })

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

interface Tracker {
  last: CursorValue
  /** hashes of the kept rows at `last`, oldest first */
  hashes: Set<string>
  wrote: boolean
  warnedThreshold: boolean
  warnedCap: boolean
}

interface Pending {
  readonly row: unknown
  readonly index: number
  readonly hash: string | undefined
}

const begin = (config: Config) =>
  Effect.gen(function* () {
    const slot = yield* ResourceState
    const { kind, sign } = config
    const backfill = config.endValue !== undefined
    const stored = backfill ? Option.none<Stored>() : yield* readStored(slot, config)
    const startValue = Option.match(stored, { onNone: () => config.initialValue, onSome: (s) => s.lastValue })
    const startHashes = new Set(Option.match(stored, { onNone: () => [], onSome: (s) => s.uniqueHashes }))
    const initialState = Option.match(stored, {
      onNone: () => kind.toState(config.initialValue),
      onSome: (s) => s.initialValue
    })
    if (!backfill && Option.isNone(stored)) {
      // as dlt, the first run stores the cursor even when no row comes
      const start = kind.toState(startValue)
      yield* writeEntry(
        slot,
        config,
        { initial_value: initialState, last_value: start, unique_hashes: [], start_value: start },
        true
      )
    }
    // no order promised: a checkpoint must not commit this cursor before the stream ends
    if (!config.eager && !backfill) {
      const hold = yield* Effect.serviceOption(CheckpointHold.CheckpointHold)
      if (Option.isSome(hold)) yield* hold.value.holdToEnd
    }
    const dedup = config.primaryKey === undefined || config.primaryKey.length > 0
    // a backfill keeps no state, so the hashes of its last rows would serve nothing
    const track = dedup && !backfill
    const tracker: Tracker = {
      last: startValue,
      // without deduplication dlt clears the hashes; a backfill never stores them; earlier
      // pipestate versions' hashes are not carried over (dlt's stand for the same rows)
      hashes: new Set(track ? [...startHashes].filter((hash) => !isLegacyHash(hash)) : []),
      wrote: false,
      warnedThreshold: false,
      warnedCap: false
    }
    const resource = slot.resourceName

    // the key value of a row: the whole row, the cell of a single key column, or the list of cells
    const keyValue = (row: unknown, index: number): Either.Either<unknown, IncrementalPrimaryKeyMissing> => {
      const keys = config.primaryKey
      if (keys === undefined) return Either.right(row)
      const values: Array<unknown> = []
      for (const key of keys) {
        const value = lookup(row, key.segments)
        if (value === ABSENT) {
          return Either.left(
            new IncrementalPrimaryKeyMissing({ resource, path: config.path, key: key.name, rowIndex: index })
          )
        }
        values.push(value)
      }
      return Either.right(config.singleKey ? values[0] : values)
    }

    const hashOf = (row: unknown, index: number): Either.Either<string, IncrementalPrimaryKeyMissing> =>
      Either.map(keyValue(row, index), (value) => digest128(untyped(value, new Set())))

    // hashes written by an earlier pipestate version are honoured for this run (they are replaced
    // by dlt's hashes when the state is written)
    let legacy = false
    for (const hash of startHashes) {
      if (isLegacyHash(hash)) {
        legacy = true
        break
      }
    }
    const seenBefore = (
      row: unknown,
      index: number,
      hash: string
    ): Either.Either<boolean, IncrementalPrimaryKeyMissing> => {
      if (startHashes.has(hash)) return Either.right(true)
      if (!legacy) return Either.right(false)
      return Either.map(keyValue(row, index), (value) =>
        // earlier versions hashed a single key as a one-item list
        startHashes.has(legacyDigest(config.primaryKey === undefined ? value : config.singleKey ? [value] : value))
      )
    }

    // One chunk, synchronously: the rows to keep, and whether the state must be written.
    const processChunk = <A>(
      chunk: Chunk.Chunk<A>,
      firstIndex: number
    ): Either.Either<{ readonly kept: Chunk.Chunk<A>; readonly changed: boolean }, IncrementalError> => {
      const kept: Array<A> = []
      let changed = false
      // rows at the running last value, hashed once the chunk is done: a row superseded by a
      // greater value later in the chunk is never hashed
      let pending: Array<Pending> = []
      let index = firstIndex - 1
      for (const row of chunk) {
        index++
        const raw = lookup(row, config.segments)
        if (raw === ABSENT || raw === null) {
          if (config.onMissing === "raise") {
            return Either.left(
              new IncrementalCursorMissing({
                resource,
                path: config.path,
                rowIndex: index,
                found: raw === null ? "null" : "absent"
              })
            )
          }
          if (config.onMissing === "include") kept.push(row)
          continue
        }
        const value = kind.fromRow(raw)
        if (value === undefined) {
          return Either.left(
            new IncrementalCursorTypeMismatch({
              resource,
              path: config.path,
              rowIndex: index,
              expected: kind.name,
              actual: describeValue(raw)
            })
          )
        }
        if (config.endValue !== undefined && sign * kind.compare(value, config.endValue) >= 0) continue
        const fromStart = sign * kind.compare(value, startValue)
        if (fromStart < 0) continue
        let hash: string | undefined
        if (fromStart === 0 && dedup && startHashes.size > 0) {
          const computed = hashOf(row, index)
          if (Either.isLeft(computed)) return Either.left(computed.left)
          hash = computed.right
          if (startHashes.has(hash)) continue
          const seen = seenBefore(row, index, hash)
          if (Either.isLeft(seen)) return Either.left(seen.left)
          if (seen.right) {
            // a row an earlier version hashed: still skipped, and remembered by dlt's hash from now on
            if (track && sign * kind.compare(value, tracker.last) === 0) pending.push({ row, index, hash })
            continue
          }
        }
        const fromLast = sign * kind.compare(value, tracker.last)
        // kept rows are at or past the start, so a row below `last` came after a greater one
        if (config.eager && fromLast < 0) {
          return Either.left(
            new IncrementalRowOrder({
              resource,
              path: config.path,
              rowIndex: index,
              rowOrder: config.rowOrder!,
              value: kind.format(value),
              last: kind.format(tracker.last)
            })
          )
        }
        kept.push(row)
        if (fromLast > 0) {
          tracker.last = value
          tracker.hashes = new Set()
          changed = true
          pending = track ? [{ row, index, hash }] : []
        } else if (fromLast === 0 && track) {
          pending.push({ row, index, hash })
        }
      }
      for (const entry of pending) {
        let hash = entry.hash
        if (hash === undefined) {
          const computed = hashOf(entry.row, entry.index)
          if (Either.isLeft(computed)) return Either.left(computed.left)
          hash = computed.right
        }
        if (!tracker.hashes.has(hash)) {
          tracker.hashes.add(hash)
          changed = true
        }
      }
      return Either.right({ kept: Chunk.unsafeFromArray(kept), changed })
    }

    const trimAndWarn = (): Effect.Effect<void> => {
      const effects: Array<Effect.Effect<void>> = []
      const hashes = tracker.hashes
      if (hashes.size > config.maxUniqueHashes) {
        let excess = hashes.size - config.maxUniqueHashes
        // a Set iterates in insertion order: the oldest go first
        for (const hash of hashes) {
          if (excess-- <= 0) break
          hashes.delete(hash)
        }
        if (!tracker.warnedCap) {
          tracker.warnedCap = true
          effects.push(
            Effect.logWarning(
              `resource ${resource}: more than ${config.maxUniqueHashes} rows share the cursor value ` +
                `${kind.format(tracker.last)} at "${config.path}"; only the hashes of the newest ` +
                `${config.maxUniqueHashes} are kept (maxUniqueHashes), so rows at this boundary may be ` +
                "duplicated on the next run. Use a cursor with finer values, a merge write disposition with a " +
                "primary key, or raise maxUniqueHashes"
            )
          )
        }
      }
      if (!tracker.warnedThreshold && hashes.size > HASH_WARNING_THRESHOLD) {
        tracker.warnedThreshold = true
        effects.push(
          Effect.logWarning(
            `resource ${resource}: ${hashes.size} rows share the cursor value ${kind.format(tracker.last)} at ` +
              `"${config.path}"; their hashes are kept in state to skip them on the next run. A cursor with ` +
              "finer values (timestamps rather than dates) keeps the state small"
          )
        )
      }
      return effects.length === 0
        ? Effect.void
        : Effect.all(effects, { discard: true }).pipe(Effect.annotateLogs({ resource, cursor: config.path }))
    }

    const persist: Effect.Effect<void, IncrementalError> = Effect.suspend(() => {
      const warn = trimAndWarn()
      tracker.wrote = true
      if (backfill) return warn
      return Effect.zipRight(
        warn,
        writeEntry(
          slot,
          config,
          {
            initial_value: initialState,
            last_value: kind.toState(tracker.last),
            unique_hashes: [...tracker.hashes],
            start_value: kind.toState(startValue)
          },
          false
        )
      )
    })

    const filter = <A, E, R>(self: Stream.Stream<A, E, R>): Stream.Stream<A, E | IncrementalError, R> =>
      Stream.suspend(() => {
        let seen = 0
        return Stream.mapChunksEffect(self, (chunk) =>
          Effect.suspend(() => {
            if (Chunk.isEmpty(chunk)) return Effect.succeed(chunk)
            const first = seen
            seen += chunk.length
            const result = processChunk(chunk, first)
            if (Either.isLeft(result)) return Effect.fail(result.left)
            const { kept, changed } = result.right
            // dlt stores start_value with the first rows a run returns, then only changes
            if (Chunk.isEmpty(kept) || (tracker.wrote && !changed)) return Effect.succeed(kept)
            return Effect.as(persist, kept)
          })
        )
      })

    // a Date cursor gives Dates back: rounded towards the values not yet seen, so that a query from
    // them includes the boundary rows (the filter compares with microseconds)
    const toPublic = (value: CursorValue): CursorValue => {
      if (kind !== dateKind || !(value instanceof StateValue.Timestamp)) return value
      const date = value.toDate()
      return sign === -1 && value.microsecond % 1000 !== 0 ? new Date(date.getTime() + 1) : date
    }

    return {
      resource,
      path: config.path,
      startValue: toPublic(startValue),
      endValue: config.endValue === undefined ? undefined : toPublic(config.endValue),
      lastValue: Effect.sync(() => toPublic(tracker.last)),
      filter
    }
  })

// ---------------------------------------------------------------------------------------------
// Constructors
// ---------------------------------------------------------------------------------------------

/**
 * Defines a cursor. Nothing runs until a resource calls {@link Cursor.start} (or {@link stream});
 * inconsistent options fail there with {@link InvalidIncrementalOptions}.
 *
 * @example
 * ```ts
 * import { Incremental } from "effect-pipestate"
 *
 * const updatedAt = Incremental.cursor({
 *   path: "updated_at",
 *   initialValue: new Date("2024-01-01T00:00:00Z"),
 *   primaryKey: ["id"],
 *   onCursorValueMissing: "exclude"
 * })
 *
 * // a backfill of January, which leaves the stored cursor alone
 * const january = Incremental.cursor({
 *   path: "updated_at",
 *   initialValue: new Date("2024-01-01T00:00:00Z"),
 *   endValue: new Date("2024-02-01T00:00:00Z")
 * })
 * ```
 *
 * @since 0.1.0
 */
export const cursor = <V extends CursorValue>(options: CursorOptions<V>): Cursor<Widen<V>> => {
  const config = configure(options)
  const start = Effect.flatMap(config, begin) as Effect.Effect<
    IncrementalRun<Widen<V>>,
    IncrementalError,
    ResourceState
  >
  return {
    path: options.path,
    initialValue: options.initialValue as Widen<V>,
    lastValueFunc: options.lastValueFunc ?? "max",
    endValue: options.endValue,
    primaryKey:
      options.primaryKey === undefined
        ? undefined
        : typeof options.primaryKey === "string"
          ? [options.primaryKey]
          : options.primaryKey,
    onCursorValueMissing: options.onCursorValueMissing ?? "raise",
    maxUniqueHashes: options.maxUniqueHashes ?? DEFAULT_MAX_UNIQUE_HASHES,
    start
  }
}

/**
 * A resource stream filtered by a cursor: starts the cursor, builds the stream from the run (its
 * `startValue` goes to the API or query), and applies the run's filter to it.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Incremental, Resource } from "effect-pipestate"
 *
 * const id = Incremental.cursor({ path: "id", initialValue: 0 })
 *
 * const events = Resource.make(
 *   { name: "events", primaryKey: ["id"] },
 *   Incremental.stream(id, (run) =>
 *     Stream.paginateChunkEffect(run.startValue, (after) => fetchEventsAfter(after)))
 * )
 * ```
 *
 * @since 0.1.0
 */
export const stream = <V extends CursorValue, A, E, R>(
  cursor: Cursor<V>,
  f: (run: IncrementalRun<V>) => Stream.Stream<A, E, R>
): Stream.Stream<A, E | IncrementalError, R | ResourceState> =>
  Stream.unwrap(Effect.map(cursor.start, (run) => run.filter(f(run))))
