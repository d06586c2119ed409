/**
 * How the dataset turns what a driver returns into the same JS values on every destination, and
 * how it binds parameters per dialect. Internal: the rules are documented on `Dataset`.
 *
 * @internal
 */
import { BigDecimal, Either } from "effect"
import type { DataType } from "../schema/DataType.js"
import {
  CalendarDate,
  formatSqliteTimestamp,
  makeCalendarDate,
  makeDecimal,
  makeTimeOfDay,
  parseSqliteTimestamp,
  type SpecialDecimal,
  Timestamp,
  TimeOfDay
} from "../../state/StateValue.js"

/**
 * A value of a decoded row.
 *
 * @internal
 */
export type Value =
  | null
  | string
  | number
  | bigint
  | boolean
  | Timestamp
  | CalendarDate
  | TimeOfDay
  | BigDecimal.BigDecimal
  | SpecialDecimal
  | Uint8Array
  | { readonly [key: string]: unknown }
  | ReadonlyArray<unknown>

/** what a decoder answers for a raw value it cannot decode: the reason */
export class Mismatch {
  constructor(readonly reason: string) {}
}

export type Decoder = (raw: unknown) => Value | Mismatch

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER)
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)
const INTEGER_TEXT = /^-?\d+$/

/** the integer rule: a number when |v| <= 2^53-1, else a bigint */
export const integer = (value: bigint): number | bigint =>
  value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value

const describe = (raw: unknown): string => {
  if (raw instanceof Uint8Array) return "bytes"
  if (raw instanceof Date) return `the Date ${Number.isNaN(raw.getTime()) ? "(invalid)" : raw.toISOString()}`
  if (typeof raw === "string") return `the text ${JSON.stringify(raw.length > 60 ? `${raw.slice(0, 60)}…` : raw)}`
  if (typeof raw === "object" && raw !== null) return Array.isArray(raw) ? "an array" : "an object"
  return `the ${typeof raw} ${String(raw)}`
}

const mismatch = (raw: unknown, type: string) => new Mismatch(`${describe(raw)} is not a ${type}`)

const bytes = (raw: Uint8Array): Uint8Array => new Uint8Array(raw)

const text: Decoder = (raw) =>
  typeof raw === "string"
    ? raw
    : typeof raw === "number" || typeof raw === "bigint" || typeof raw === "boolean"
      ? String(raw)
      : mismatch(raw, "text")

const bigintValue: Decoder = (raw) => {
  if (typeof raw === "bigint") return integer(raw)
  if (typeof raw === "number") return Number.isInteger(raw) ? raw : mismatch(raw, "bigint")
  if (typeof raw === "string" && INTEGER_TEXT.test(raw)) return integer(BigInt(raw))
  return mismatch(raw, "bigint")
}

const double: Decoder = (raw) => {
  if (typeof raw === "number") return raw
  if (typeof raw === "bigint") return Number(raw)
  if (typeof raw === "string") {
    const n = Number(raw)
    if (!Number.isNaN(n) || raw === "NaN") return n
  }
  return mismatch(raw, "double")
}

const bool: Decoder = (raw) => {
  if (typeof raw === "boolean") return raw
  if (raw === 0 || raw === 0n) return false
  if (raw === 1 || raw === 1n) return true
  return mismatch(raw, "bool (true/false, or 1/0 on SQLite)")
}

const timestamp: Decoder = (raw) => {
  if (typeof raw === "string") {
    return Either.match(parseSqliteTimestamp(raw), {
      onLeft: () => mismatch(raw, "timestamp"),
      onRight: (t) => t
    })
  }
  if (raw instanceof Date && !Number.isNaN(raw.getTime())) return Timestamp.fromDate(raw)
  if (raw instanceof Timestamp) return raw.withOffset(0)
  return mismatch(raw, "timestamp")
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0")

const date: Decoder = (raw) => {
  if (typeof raw === "string") {
    // a date column read through a timestamp expression keeps its day
    const day = /^\d{4}-\d{2}-\d{2}/.exec(raw)?.[0] ?? raw
    return Either.match(makeCalendarDate(day), { onLeft: () => mismatch(raw, "date"), onRight: (d) => d })
  }
  // node-postgres' own parser (a client without pipestate's type parsers) reads a date at local midnight
  if (raw instanceof Date && !Number.isNaN(raw.getTime())) {
    return new CalendarDate({ iso: `${pad(raw.getFullYear(), 4)}-${pad(raw.getMonth() + 1)}-${pad(raw.getDate())}` })
  }
  if (raw instanceof CalendarDate) return raw
  return mismatch(raw, "date")
}

const time: Decoder = (raw) => {
  if (typeof raw === "string") {
    return Either.match(makeTimeOfDay(raw), { onLeft: () => mismatch(raw, "time"), onRight: (t) => t })
  }
  if (raw instanceof TimeOfDay) return raw
  return mismatch(raw, "time")
}

// normalized (12.50 → 12.5): the destinations do not all keep a decimal's scale
const decimal: Decoder = (raw) => {
  if (typeof raw === "string" || typeof raw === "number") {
    return Either.match(makeDecimal(String(raw)), {
      onLeft: () => mismatch(raw, "decimal"),
      onRight: (d) => (BigDecimal.isBigDecimal(d) ? BigDecimal.normalize(d) : d)
    })
  }
  if (typeof raw === "bigint") return BigDecimal.fromBigInt(raw)
  if (BigDecimal.isBigDecimal(raw)) return BigDecimal.normalize(raw)
  return mismatch(raw, "decimal")
}

/**
 * A PostgreSQL `numeric` that no schema types (`sum(int)`, `avg(...)`): a number as SQLite
 * computes it, an integer by the bigint rule when it has no fraction, else a double.
 */
export const untypedNumeric: Decoder = (raw) => {
  if (raw === null || raw === undefined) return null
  if (typeof raw === "string") {
    if (INTEGER_TEXT.test(raw)) return integer(BigInt(raw))
    const n = Number(raw)
    if (!Number.isNaN(n) || raw === "NaN") return n
  }
  return untyped(raw)
}

const binary: Decoder = (raw) => (raw instanceof Uint8Array ? bytes(raw) : mismatch(raw, "binary"))

/** JSON text parsed; `parsed`: the driver already parsed it (PostgreSQL json/jsonb) */
const json =
  (parsed: boolean): Decoder =>
  (raw) => {
    if (parsed) return raw as Value
    if (typeof raw === "string") {
      try {
        return JSON.parse(raw) as Value
      } catch {
        return mismatch(raw, "json document")
      }
    }
    if (typeof raw === "object" && raw !== null && !(raw instanceof Uint8Array)) return raw as Value
    if (typeof raw === "number" || typeof raw === "boolean") return raw
    // SQLite gives a JSON column NUMERIC affinity: a scalar number document is stored as a number
    if (typeof raw === "bigint") return integer(raw)
    return mismatch(raw, "json document")
  }

const orNull =
  (decoder: Decoder): Decoder =>
  (raw) =>
    raw === null || raw === undefined ? null : decoder(raw)

/**
 * The decoder of a column of a dlt data type. `parsedJson`: the driver returns json already parsed.
 *
 * @internal
 */
export const forDataType = (type: DataType, parsedJson: boolean): Decoder => {
  switch (type) {
    case "text":
      return orNull(text)
    case "bigint":
      return orNull(bigintValue)
    case "double":
      return orNull(double)
    case "bool":
      return orNull(bool)
    case "timestamp":
      return orNull(timestamp)
    case "date":
      return orNull(date)
    case "time":
      return orNull(time)
    case "decimal":
    case "wei":
      return orNull(decimal)
    case "binary":
      return orNull(binary)
    case "json":
      return orNull(json(parsedJson))
  }
}

/**
 * The driver-neutral rule for a column with no known type: by the JS value the driver returns.
 *
 * @internal
 */
export const untyped: Decoder = (raw) => {
  if (raw === null || raw === undefined) return null
  if (typeof raw === "bigint") return integer(raw)
  if (raw instanceof Uint8Array) return bytes(raw)
  if (raw instanceof Date) return Number.isNaN(raw.getTime()) ? mismatch(raw, "timestamp") : Timestamp.fromDate(raw)
  return raw as Value
}

/**
 * PostgreSQL's type OIDs and the dlt data type their values decode as, for result columns that no
 * stored schema types (expressions, tables of other pipelines).
 *
 * @internal
 */
export const PG_TYPES: ReadonlyMap<number, DataType> = new Map<number, DataType>([
  [16, "bool"],
  [17, "binary"],
  [20, "bigint"],
  [21, "bigint"],
  [23, "bigint"],
  [26, "bigint"],
  [700, "double"],
  [701, "double"],
  [1700, "decimal"],
  [114, "json"],
  [3802, "json"],
  [1082, "date"],
  [1083, "time"],
  [1266, "time"],
  [1114, "timestamp"],
  [1184, "timestamp"],
  [25, "text"],
  [1043, "text"],
  [1042, "text"],
  [19, "text"]
])

/** PostgreSQL's `numeric` */
export const PG_NUMERIC = 1700

/** PostgreSQL json and jsonb: node-postgres parses them */
export const PG_JSON_TYPES: ReadonlySet<number> = new Set([114, 3802])

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

const isPlainJson = (value: object): boolean => {
  if (Array.isArray(value)) return true
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/**
 * A parameter as the dialect binds it: SQLite takes no boolean, Date or object (booleans as 1/0,
 * timestamps as the text the destination stores); both take JSON as text, decimals as text, dates
 * and times as ISO text and a `Timestamp` with its microseconds.
 *
 * @internal
 */
export const encodeParam = (dialect: string, value: unknown): unknown => {
  const sqlite = dialect === "sqlite"
  if (value === undefined) return null
  if (typeof value === "boolean") return sqlite ? (value ? 1 : 0) : value
  if (typeof value === "bigint") return sqlite ? value : value.toString()
  if (typeof value !== "object" || value === null) return value
  if (value instanceof Timestamp) {
    return sqlite ? formatSqliteTimestamp(value) : (value.isNaive ? value.withOffset(0) : value).toString()
  }
  if (value instanceof Date) return sqlite ? formatSqliteTimestamp(value) : value.toISOString()
  if (value instanceof CalendarDate || value instanceof TimeOfDay) return value.iso
  if (BigDecimal.isBigDecimal(value)) return BigDecimal.format(value)
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  if (isPlainJson(value)) {
    // a value JSON cannot hold (a bigint, a cycle) is bound as it is: the driver refuses it
    try {
      return JSON.stringify(value)
    } catch {
      return value
    }
  }
  return value
}
