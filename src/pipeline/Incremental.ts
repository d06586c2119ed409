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
 * import { Incremental, Resource } from "pipestate"
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
import type * as StateSlot from "../context/StateSlot.js"
import type * as StateValue from "../state/StateValue.js"

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
 * | `bigint`     | bigints, safe integer numbers                                    | decimal (typed)    |
 * | `string`     | strings (compared by UTF-16 code units)                          | string             |
 * | `Date`       | valid Dates, ISO 8601 text (no offset means UTC)                 | datetime (typed)   |
 * | `BigDecimal` | BigDecimals, finite numbers, bigints, decimal text               | decimal (typed)    |
 *
 * @since 0.1.0
 */
export type CursorValue = number | bigint | string | Date | BigDecimal.BigDecimal

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
}

/**
 * A cursor definition. It holds no state: every {@link Cursor.start} reads the resource state anew.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Incremental, Resource } from "pipestate"
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
const ISO_DATETIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$/

const daysIn = (year: number, month: number): number =>
  month === 2
    ? year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
      ? 29
      : 28
    : month === 4 || month === 6 || month === 9 || month === 11
      ? 30
      : 31

// ISO 8601 text as an instant; Date.parse would accept "2024-02-30" (as March 1st) and read a
// datetime without offset in the local zone, so the fields are checked and UTC is assumed (as dlt).
const parseIsoDatetime = (text: string): Date | undefined => {
  const m = ISO_DATETIME.exec(text)
  if (m === null) return undefined
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])]
  const hour = m[4] === undefined ? 0 : Number(m[4])
  const minute = m[5] === undefined ? 0 : Number(m[5])
  const second = m[6] === undefined ? 0 : Number(m[6])
  const millis = m[7] === undefined ? 0 : Number(`${m[7]}00`.slice(0, 3))
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return undefined
  if (hour > 23 || minute > 59 || second > 59) return undefined
  let offset = 0
  if (m[9] !== undefined) {
    const oh = Number(m[10])
    const om = Number(m[11])
    if (oh > 23 || om > 59) return undefined
    offset = (m[9] === "-" ? -1 : 1) * (oh * 60 + om)
  }
  const date = new Date(0)
  date.setUTCFullYear(year, month - 1, day)
  date.setUTCHours(hour, minute, second, millis)
  return new Date(date.getTime() - offset * 60_000)
}

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
    typeof stored === "number" && Number.isSafeInteger(stored)
      ? BigInt(stored)
      : BigDecimal.isBigDecimal(stored)
        ? bigintFromDecimal(stored)
        : undefined,
  // a bigint is no state value; dlt reads the typed decimal back as a Python Decimal
  toState: (value) => BigDecimal.fromBigInt(value as bigint),
  compare: (a, b) => order(a as bigint, b as bigint),
  format: (value) => `${value as bigint}n`
}

const stringKind: Kind = {
  name: "string",
  fromRow: (raw) => (typeof raw === "string" ? raw : undefined),
  fromState: (stored) => (typeof stored === "string" ? stored : undefined),
  toState: (value) => value as string,
  compare: (a, b) => order(a as string, b as string),
  format: (value) => JSON.stringify(value)
}

const validDate = (value: unknown): value is Date => value instanceof Date && !Number.isNaN(value.getTime())

const dateKind: Kind = {
  name: "Date",
  fromRow: (raw) => (validDate(raw) ? raw : typeof raw === "string" ? parseIsoDatetime(raw) : undefined),
  fromState: (stored) => (validDate(stored) ? stored : undefined),
  // a copy: the row's Date could be mutated after it was stored
  toState: (value) => new Date((value as Date).getTime()),
  compare: (a, b) => order((a as Date).getTime(), (b as Date).getTime()),
  format: (value) => (value as Date).toISOString()
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
      return validDate(value) ? dateKind : BigDecimal.isBigDecimal(value) ? decimalKind : undefined
    default:
      return undefined
  }
}

const describeValue = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? "an invalid Date" : "a Date"
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

// Canonical text of a value: sorted keys and typed marks (as the state's typed JSON) for the
// values JSON cannot tell apart, so a row hashes the same in every process and on every run.
const canonical = (value: unknown, ancestors: Set<object>): string => {
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
        text = `[${value.map((item) => (item === undefined ? "null" : canonical(item, ancestors))).join(",")}]`
      } else if (value instanceof Map) {
        const entries = [...value.entries()].map(([k, v]) => `[${canonical(k, ancestors)},${canonical(v, ancestors)}]`)
        text = `{"$map":[${entries.sort().join(",")}]}`
      } else if (value instanceof Set) {
        text = `{"$set":[${[...value]
          .map((item) => canonical(item, ancestors))
          .sort()
          .join(",")}]}`
      } else {
        const record = value as Record<string, unknown>
        const parts: Array<string> = []
        for (const key of Object.keys(record).sort()) {
          const item = record[key]
          if (item === undefined || typeof item === "function" || typeof item === "symbol") continue
          parts.push(`${JSON.stringify(key)}:${canonical(item, ancestors)}`)
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

const digest = (value: unknown): string =>
  createHash("sha256").update(canonical(value, new Set())).digest("base64").slice(0, 16)

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
  readonly onMissing: OnCursorValueMissing
  readonly maxUniqueHashes: number
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
  const endValue = options.endValue
  if (endValue !== undefined) {
    if (kindOf(endValue) !== kind) {
      return invalid(
        `endValue is ${describeValue(endValue)}, but initialValue is a ${kind.name}: give both the same kind`
      )
    }
    if (sign * kind.compare(endValue, options.initialValue) <= 0) {
      return invalid(
        `endValue ${kind.format(endValue)} must be ${sign === 1 ? "greater" : "less"} than initialValue ` +
          `${kind.format(options.initialValue)} (lastValueFunc "${sign === 1 ? "max" : "min"}"): the window [initialValue, endValue) is empty`
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
  return Either.right({
    path,
    segments,
    kind,
    sign,
    initialValue: options.initialValue,
    endValue,
    primaryKey: keys === undefined ? undefined : primaryKey,
    onMissing: options.onCursorValueMissing ?? "raise",
    maxUniqueHashes
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
    const dedup = config.primaryKey === undefined || config.primaryKey.length > 0
    // a backfill keeps no state, so the hashes of its last rows would serve nothing
    const track = dedup && !backfill
    const tracker: Tracker = {
      last: startValue,
      // without deduplication dlt clears the hashes; a backfill never stores them
      hashes: new Set(track ? startHashes : []),
      wrote: false,
      warnedThreshold: false,
      warnedCap: false
    }
    const resource = slot.resourceName

    const hashOf = (row: unknown, index: number): Either.Either<string, IncrementalPrimaryKeyMissing> => {
      const keys = config.primaryKey
      if (keys === undefined) return Either.right(digest(row))
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
      return Either.right(digest(values))
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
        }
        kept.push(row)
        const fromLast = sign * kind.compare(value, tracker.last)
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

    const toPublic = (value: CursorValue): CursorValue => (value instanceof Date ? new Date(value.getTime()) : value)

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
 * import { Incremental } from "pipestate"
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
 * import { Incremental, Resource } from "pipestate"
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
