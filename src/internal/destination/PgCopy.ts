/**
 * Fast loading into PostgreSQL with `COPY ... FROM STDIN`: CSV formatting of row batches, and
 * streaming that CSV (from memory or from a spool file) into a COPY that runs on the connection of the
 * current `sql.withTransaction`, so the loaded rows commit and roll back with everything else.
 *
 * @since 0.1.0
 */
import { createReadStream } from "node:fs"
import { pipeline } from "node:stream/promises"
import * as SqlClient from "@effect/sql/SqlClient"
import { BigDecimal, Chunk, Duration, Effect, Either, Exit, Option, Schema, Stream } from "effect"
import type { ClientBase } from "pg"
import { type CopyStreamQuery, from as copyFromQuery } from "pg-copy-streams"
import { Timestamp } from "../../state/StateValue.js"
import { type Cell, type Column, type ColumnType, decimalText } from "./TableSchema.js"

/**
 * Why a COPY could not be prepared or did not complete. `table`, `column` and `row` (0-based index
 * in the batch) locate the offending value when it is known.
 *
 * @since 0.1.0
 */
export class PgCopyError extends Schema.TaggedError<PgCopyError>()("PgCopyError", {
  reason: Schema.String,
  table: Schema.optional(Schema.String),
  column: Schema.optional(Schema.String),
  row: Schema.optional(Schema.Number),
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    const where = [
      this.table === undefined ? undefined : `table "${this.table}"`,
      this.column === undefined ? undefined : `column "${this.column}"`,
      this.row === undefined ? undefined : `row ${this.row}`
    ].filter((part) => part !== undefined)
    return where.length === 0 ? `COPY failed: ${this.reason}` : `COPY failed (${where.join(", ")}): ${this.reason}`
  }
}

/** Where a COPY goes, for error messages only. */
interface Location {
  readonly table?: string | undefined
  readonly column?: string | undefined
  readonly row?: number | undefined
}

const copyError = (reason: string, at: Location, cause?: unknown): PgCopyError =>
  new PgCopyError({
    reason,
    ...(at.table === undefined ? {} : { table: at.table }),
    ...(at.column === undefined ? {} : { column: at.column }),
    ...(at.row === undefined ? {} : { row: at.row }),
    ...(cause === undefined ? {} : { cause })
  })

/**
 * Quotes a PostgreSQL identifier (table, column or schema name): wraps it in double quotes and doubles
 * any double quote inside, so the name is taken literally whatever it contains.
 *
 * PostgreSQL truncates identifiers longer than 63 bytes; names must be shortened before they get here.
 *
 * @example
 * ```ts
 * quoteIdent("order") // "\"order\""
 * quoteIdent('x"; DROP TABLE y; --') // "\"x\"\"; DROP TABLE y; --\""
 * ```
 *
 * @since 0.1.0
 */
export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`

/**
 * The COPY statement that reads what {@link formatCsvRows} writes for these columns.
 *
 * @example
 * ```ts
 * copyCsvStatement("events", columns, "analytics")
 * // COPY "analytics"."events" ("id", "payload") FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8')
 * ```
 *
 * @since 0.1.0
 */
export const copyCsvStatement = (table: string, columns: ReadonlyArray<Column>, schema?: string): string => {
  const target = schema === undefined ? quoteIdent(table) : `${quoteIdent(schema)}.${quoteIdent(table)}`
  const names = columns.map((column) => quoteIdent(column.name)).join(", ")
  // ENCODING pins the spool files to UTF-8 whatever client_encoding the session was given.
  return `COPY ${target} (${names}) FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8')`
}

// ---------------------------------------------------------------------------------------------------
// CSV formatting
// ---------------------------------------------------------------------------------------------------

/** A cell that cannot be written, with the reason; encoders return it instead of throwing. */
class Invalid {
  constructor(readonly reason: string) {}
}

type Encoder = (value: unknown) => string | Invalid

const describe = (value: unknown): string => {
  if (value instanceof Date) return "a Date"
  if (value instanceof Uint8Array) return "a Uint8Array"
  if (BigDecimal.isBigDecimal(value)) return `the BigDecimal ${BigDecimal.format(value)}`
  if (Array.isArray(value)) return "an array"
  switch (typeof value) {
    case "string":
      return value.length > 40 ? `the string "${value.slice(0, 40)}…"` : `the string "${value}"`
    case "number":
    case "bigint":
    case "boolean":
      return `the ${typeof value} ${String(value)}`
    default:
      return typeof value === "object" ? "an object" : `a ${typeof value}`
  }
}

const mismatch = (type: ColumnType, expected: string, value: unknown): Invalid =>
  new Invalid(
    `a ${type} column takes ${expected}, got ${describe(value)}; ` +
      "fix the value in the resource or let the normalizer widen the column type"
  )

const NUL_IN_TEXT = new Invalid(
  "the string contains a NUL character (\\u0000), which PostgreSQL cannot store in text or jsonb; " +
    "strip it in the resource, or load the value as bytes"
)

// A regex char class beat a charCodeAt loop here (about 2x on short strings, 3x on 120-char ones).
const NEEDS_QUOTES = /[",\n\r\0]/

/**
 * CSV form of a string. An empty string is quoted so it stays distinct from NULL (an empty unquoted
 * field). A leading backslash is quoted because an unquoted `\.` alone on a line ends COPY data.
 */
const csvText = (value: string): string | Invalid => {
  if (value.length === 0) return '""'
  if (!NEEDS_QUOTES.test(value)) return value.charCodeAt(0) === 92 ? `"${value}"` : value
  if (value.includes("\0")) return NUL_IN_TEXT
  return value.includes('"') ? `"${value.replaceAll('"', '""')}"` : `"${value}"`
}

const encodeText: Encoder = (value) =>
  typeof value === "string" ? csvText(value) : mismatch("text", "a string", value)

const encodeBigint: Encoder = (value) => {
  if (typeof value === "bigint") return value.toString()
  if (typeof value === "number" && Number.isInteger(value)) {
    // String(1e21) is "1e+21", which int8 input rejects; BigInt prints the double's exact digits.
    return Number.isSafeInteger(value) ? String(value) : BigInt(value).toString()
  }
  return mismatch("bigint", "a bigint or an integral number", value)
}

// String(n) is the shortest text that reads back as the same double. NaN, Infinity and -Infinity
// come out as PostgreSQL's own spellings, which double precision stores; only -0 needs help.
const encodeDouble: Encoder = (value) => {
  if (typeof value !== "number") return mismatch("double", "a number", value)
  return value === 0 && 1 / value < 0 ? "-0" : String(value)
}

const encodeBoolean: Encoder = (value) =>
  value === true ? "t" : value === false ? "f" : mismatch("boolean", "a boolean", value)

const encodeDecimal: Encoder = (value) =>
  // format() switches to exponent notation past 15 digits of scale; numeric input accepts it exactly.
  BigDecimal.isBigDecimal(value) ? decimalText(value) : mismatch("decimal", "a BigDecimal", value)

// bytea hex format; backslash is not special in CSV, so no quoting.
const encodeBytes: Encoder = (value) =>
  value instanceof Uint8Array
    ? `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex")}`
    : mismatch("bytes", "a Uint8Array", value)

/** JSON.stringify writes NUL as `\u0000`, which jsonb rejects; an escaped backslash before it does not count. */
const hasEscapedNul = (json: string): boolean => {
  let at = json.indexOf("\\u0000")
  while (at !== -1) {
    let backslashes = 0
    for (let i = at - 1; i >= 0 && json.charCodeAt(i) === 92; i--) backslashes++
    if (backslashes % 2 === 0) return true
    at = json.indexOf("\\u0000", at + 1)
  }
  return false
}

/** JSON.stringify's output for a value it handles specially, already quote-doubled for CSV. */
const stringifiedForCsv = (value: unknown): string | Invalid | undefined => {
  const json = JSON.stringify(value)
  if (json === undefined) return undefined
  return hasEscapedNul(json) ? NUL_IN_TEXT : json.replaceAll('"', '""')
}

// Strings JSON.stringify would escape: quote, backslash, control characters, surrogates (lone ones
// are escaped, pairs are not, so any surrogate takes the slow path).
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters JSON must escape
const JSON_ESCAPES = /["\\\u0000-\u001f\ud800-\udfff]/

const jsonStringForCsv = (text: string): string | Invalid => {
  if (!JSON_ESCAPES.test(text)) return `""${text}""`
  if (text.includes("\0")) return NUL_IN_TEXT
  return JSON.stringify(text).replaceAll('"', '""')
}

// Deeper values go to JSON.stringify, which also reports cycles.
const MAX_JSON_DEPTH = 32

/**
 * JSON text with every `"` doubled, ready to sit inside a quoted CSV field. Writing the doubled quotes
 * directly is about 2x faster than JSON.stringify followed by replaceAll. Only plain objects, plain
 * arrays and primitives are handled here; anything else (toJSON, Dates, class instances, boxed
 * values, bigints) goes through JSON.stringify, so the output is always what JSON.stringify writes.
 * `undefined` means "omitted", as JSON.stringify omits undefined, functions and symbols.
 */
const jsonForCsv = (value: unknown, depth: number): string | Invalid | undefined => {
  switch (typeof value) {
    case "string":
      return jsonStringForCsv(value)
    case "number":
      return Number.isFinite(value) ? String(value) : "null"
    case "boolean":
      return value ? "true" : "false"
    case "undefined":
    case "function":
    case "symbol":
      return undefined
    case "object": {
      if (value === null) return "null"
      if (depth >= MAX_JSON_DEPTH || typeof (value as { readonly toJSON?: unknown }).toJSON === "function") break
      const proto: unknown = Object.getPrototypeOf(value)
      if (proto === Array.prototype) {
        const array = value as ReadonlyArray<unknown>
        let out = "["
        for (let i = 0; i < array.length; i++) {
          const item = jsonForCsv(array[i], depth + 1)
          if (item instanceof Invalid) return item
          out += i === 0 ? (item ?? "null") : `,${item ?? "null"}`
        }
        return `${out}]`
      }
      if (proto === Object.prototype || proto === null) {
        const record = value as { readonly [key: string]: unknown }
        let out = "{"
        for (const key of Object.keys(record)) {
          const item = jsonForCsv(record[key], depth + 1)
          if (item === undefined) continue
          if (item instanceof Invalid) return item
          const name = jsonStringForCsv(key)
          if (name instanceof Invalid) return name
          out += out.length === 1 ? `${name}:${item}` : `,${name}:${item}`
        }
        return `${out}}`
      }
      break
    }
  }
  return stringifiedForCsv(value)
}

const encodeJson: Encoder = (value) => {
  let json: string | Invalid | undefined
  try {
    json = jsonForCsv(value, 0)
  } catch (cause) {
    return new Invalid(
      `the value cannot be written as JSON (${cause instanceof Error ? cause.message : String(cause)}); ` +
        "convert bigints to strings and remove cycles in the resource"
    )
  }
  if (json === undefined) return mismatch("json", "a JSON value", value)
  return typeof json === "string" ? `"${json}"` : json
}

const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => (i < 10 ? `0${i}` : `${i}`))
const MS_PER_DAY = 86_400_000

const YEARS = Array.from({ length: 10_000 }, (_, i) => String(i).padStart(4, "0"))

/**
 * "YYYY-MM-DD " of a day counted from 1970-01-01, by civil-from-days arithmetic on the proleptic
 * Gregorian calendar (H. Hinnant's algorithm), as Date and PostgreSQL both use: no Date allocation.
 * JS counts years astronomically (year 0 is 1 BC); PostgreSQL writes 1 BC, 2 BC, ... so `bc` says
 * the caller must append " BC".
 */
const datePrefix = (days: number): { readonly prefix: string; readonly bc: boolean } => {
  const shifted = days + 719_468 // days from 0000-03-01, so leap days fall at the end of a year
  const era = Math.floor(shifted / 146_097)
  const dayOfEra = shifted - era * 146_097
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365
  )
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100))
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153)
  const day = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
  const shown = year > 0 ? year : 1 - year
  return {
    prefix: `${YEARS[shown] ?? String(shown)}-${TWO_DIGITS[month]}-${TWO_DIGITS[day]} `,
    bc: year <= 0
  }
}

// a Timestamp keeps its microseconds and offset; a naive one is UTC (as dlt normalizes it). A
// `Date` never gets here: the timestamp writer puts its text in as bytes (see makeTimestampWriter).
const encodeTimestamp: Encoder = (value) =>
  value instanceof Timestamp
    ? (value.isNaive ? value.withOffset(0) : value).toString()
    : mismatch("timestamp", "a Date", value)

const encoderFor = (type: ColumnType): Encoder => {
  switch (type) {
    case "text":
      return encodeText
    case "bigint":
      return encodeBigint
    case "double":
      return encodeDouble
    case "boolean":
      return encodeBoolean
    case "timestamp":
      return encodeTimestamp
    case "decimal":
      return encodeDecimal
    case "bytes":
      return encodeBytes
    case "json":
      return encodeJson
  }
}

/** Options for {@link formatCsvRows} and {@link formatCsvBytes}. */
export interface FormatOptions {
  /** Named in errors. */
  readonly table?: string
}

// ---------------------------------------------------------------------------------------------------
// Writing cells straight into the buffer
// ---------------------------------------------------------------------------------------------------

/** The buffer being filled: `used` bytes written so far. */
interface Out {
  buffer: Buffer
  used: number
  readonly scratch: CsvScratch | undefined
}

/** Makes room for `bytes` more bytes. */
const ensure = (out: Out, bytes: number): void => {
  if (out.buffer.length - out.used >= bytes) return
  const grown = Buffer.allocUnsafe(Math.max(out.buffer.length * 2, out.used + bytes))
  out.buffer.copy(grown, 0, 0, out.used)
  out.buffer = grown
  if (out.scratch !== undefined) out.scratch.buffer = grown
}

// A short ASCII string is copied a char at a time (no call into the UTF-8 encoder); the rest of a
// longer or non-ASCII one goes through Buffer#write. A UTF-16 code unit takes at most 3 UTF-8 bytes.
const SHORT_TEXT = 48

const writeText = (out: Out, text: string): void => {
  const n = text.length
  ensure(out, n * 3)
  const buffer = out.buffer
  let at = out.used
  if (n <= SHORT_TEXT) {
    let i = 0
    for (; i < n; i++) {
      const c = text.charCodeAt(i)
      if (c >= 0x80) break
      buffer[at++] = c
    }
    if (i === n) {
      out.used = at
      return
    }
    out.used = at + buffer.write(i === 0 ? text : text.slice(i), at)
    return
  }
  out.used = at + buffer.write(text, at)
}

// digits of a non-negative safe integer, written backwards from the end of its width
const writeDigits = (out: Out, value: number): void => {
  let width = 1
  for (let v = value; v >= 10; v = Math.floor(v / 10)) width++
  const buffer = out.buffer
  let at = out.used + width
  out.used = at
  let v = value
  do {
    const q = Math.floor(v / 10)
    buffer[--at] = 48 + (v - q * 10)
    v = q
  } while (v > 0)
}

const write2 = (buffer: Buffer, at: number, value: number): void => {
  const tens = (value / 10) | 0
  buffer[at] = 48 + tens
  buffer[at + 1] = 48 + value - tens * 10
}

/**
 * Writes one cell; `undefined` when written, the reason when the value cannot be. Types whose
 * text is fixed in shape (integers, booleans, `Date` timestamps) are written as bytes without
 * making a string; the others through their encoder.
 */
type CellWriter = (value: unknown, out: Out) => Invalid | undefined

const viaEncoder =
  (encoder: Encoder): CellWriter =>
  (value, out) => {
    const text = encoder(value)
    if (typeof text !== "string") return text
    writeText(out, text)
    return undefined
  }

const writeBigintText = viaEncoder(encodeBigint)
const writeTimestampText = viaEncoder(encodeTimestamp)
const writeJsonText = viaEncoder(encodeJson)

const writeBigint: CellWriter = (value, out) => {
  if (typeof value === "number" && Number.isSafeInteger(value)) {
    ensure(out, 17)
    if (value < 0) {
      out.buffer[out.used++] = 45 // -
      writeDigits(out, -value)
    } else {
      writeDigits(out, value)
    }
    return undefined
  }
  return writeBigintText(value, out)
}

const writeBoolean: CellWriter = (value, out) => {
  if (typeof value !== "boolean") return mismatch("boolean", "a boolean", value)
  ensure(out, 1)
  out.buffer[out.used++] = value ? 116 : 102 // t, f
  return undefined
}

/**
 * A `Date` as `YYYY-MM-DD HH:MM:SS[.mmm]Z`, written as bytes: exact UTC to the millisecond, in what
 * PostgreSQL reads where toISOString does not (years past 9999 without a sign, years before 1 as
 * `... BC`). The date part is computed without a Date and kept while consecutive values fall on the
 * same UTC day (usual within one column). Other values (a `Timestamp`) go to the encoder.
 */
const makeTimestampWriter = (): CellWriter => {
  let cachedDay = Number.NaN
  let prefix = ""
  let bc = false
  return (value, out) => {
    if (!(value instanceof Date)) return writeTimestampText(value, out)
    const time = value.getTime()
    if (Number.isNaN(time)) return new Invalid("the Date is invalid (its time is NaN); fix the value in the resource")
    const day = Math.floor(time / MS_PER_DAY)
    let rest = time - day * MS_PER_DAY
    if (day !== cachedDay) {
      cachedDay = day
      const date = datePrefix(day)
      prefix = date.prefix
      bc = date.bc
    }
    ensure(out, prefix.length + 16)
    const buffer = out.buffer
    let at = out.used
    for (let i = 0; i < prefix.length; i++) buffer[at++] = prefix.charCodeAt(i)
    const hours = (rest / 3_600_000) | 0
    rest -= hours * 3_600_000
    const minutes = (rest / 60_000) | 0
    rest -= minutes * 60_000
    const seconds = (rest / 1000) | 0
    rest -= seconds * 1000
    write2(buffer, at, hours)
    buffer[at + 2] = 58 // :
    write2(buffer, at + 3, minutes)
    buffer[at + 5] = 58
    write2(buffer, at + 6, seconds)
    at += 8
    if (rest !== 0) {
      buffer[at] = 46 // .
      const hundreds = (rest / 100) | 0
      buffer[at + 1] = 48 + hundreds
      write2(buffer, at + 2, rest - hundreds * 100)
      at += 4
    }
    buffer[at++] = 90 // Z
    if (bc) at += buffer.write(" BC", at, "latin1")
    out.used = at
    return undefined
  }
}

// JSON text goes between quotes written as bytes (no third string per value)
const writeJson: CellWriter = (value, out) => {
  let json: string | Invalid | undefined
  try {
    json = jsonForCsv(value, 0)
  } catch {
    return writeJsonText(value, out)
  }
  if (typeof json !== "string") return writeJsonText(value, out)
  ensure(out, 1)
  out.buffer[out.used++] = 34 // "
  writeText(out, json)
  ensure(out, 1)
  out.buffer[out.used++] = 34
  return undefined
}

const writerFor = (type: ColumnType): CellWriter => {
  switch (type) {
    case "bigint":
      return writeBigint
    case "boolean":
      return writeBoolean
    case "timestamp":
      return makeTimestampWriter()
    case "json":
      return writeJson
    default:
      return viaEncoder(encoderFor(type))
  }
}

/**
 * The shared loop: each cell is written straight into a growing Buffer (no string per row, none per
 * integer, boolean or `Date`): building strings per row kept the formatting's garbage at about 2 KB
 * a row, and what survived young-generation collections while a chunk was formatted was promoted
 * and grew the old generation.
 */
const formatInto = (
  columns: ReadonlyArray<Column>,
  rows: ReadonlyArray<ReadonlyArray<Cell>>,
  options: FormatOptions | undefined,
  scratch?: CsvScratch
): Either.Either<readonly [Buffer, number], PgCopyError> => {
  const table = options?.table
  const width = columns.length
  if (width === 0) {
    return Either.left(copyError("there are no columns to copy; a COPY needs at least one column", { table }))
  }
  const writers = columns.map((column) => writerFor(column.type))
  const out: Out = {
    buffer: scratch?.buffer ?? Buffer.allocUnsafe(Math.min(Math.max(rows.length * width * 12, 4096), 1 << 24)),
    used: 0,
    scratch
  }
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!
    const length = row.length
    if (length > width) {
      return Either.left(
        copyError(`the row has ${length} cells but the table has ${width} columns; align rows with the columns`, {
          table,
          row: r
        })
      )
    }
    for (let c = 0; c < width; c++) {
      if (c > 0) {
        ensure(out, 1)
        out.buffer[out.used++] = 44 // ,
      }
      const value = c < length ? row[c] : null
      if (value !== null && value !== undefined) {
        const failed = writers[c]!(value, out)
        if (failed !== undefined)
          return Either.left(copyError(failed.reason, { table, column: columns[c]!.name, row: r }))
      }
    }
    ensure(out, 1)
    out.buffer[out.used++] = 10 // \n
  }
  return Either.right([out.buffer, out.used] as const)
}

/**
 * Formats rows as CSV for `COPY table (columns) FROM STDIN WITH (FORMAT csv)` (see
 * {@link copyCsvStatement}): one line per row, cells in column order, a short row's missing trailing
 * cells written as NULL.
 *
 * - NULL is an empty unquoted field and `""` is the empty string; fields are quoted only when needed.
 * - bigint: a `bigint` or an integral `number`. double: any number, including `NaN`, `Infinity` and
 *   `-0`, which PostgreSQL's double precision stores as they are. boolean: `t` / `f`.
 * - timestamp: a `Date`, written as exact UTC text to the millisecond. decimal: a `BigDecimal`.
 *   bytes: a `Uint8Array`, in bytea hex form. json: any JSON-able value, written for jsonb.
 *
 * Returns a `PgCopyError` naming the column and row instead of writing what PostgreSQL would reject
 * or silently alter: a string (text or inside json) holding a NUL character, a value of the wrong
 * type, an invalid `Date`, a value JSON.stringify refuses, or a row longer than `columns`.
 * `Either` is also an Effect, so `yield*` works on the result inside `Effect.gen`.
 *
 * Text is UTF-8 encoded on the way; a lone UTF-16 surrogate (invalid Unicode) becomes U+FFFD.
 * To COPY or spool the result, prefer {@link formatCsvBytes}, which skips decoding it back to a string.
 *
 * @example
 * ```ts
 * const columns = [
 *   { name: "id", type: "bigint", nullable: false, primaryKey: true },
 *   { name: "name", type: "text", nullable: true, primaryKey: false }
 * ] as const
 * formatCsvRows(columns, [[1n, "a, b"], [2n, ""], [3n]])
 * // Either.right('1,"a, b"\n2,""\n3,\n')
 * ```
 *
 * @since 0.1.0
 */
export const formatCsvRows = (
  columns: ReadonlyArray<Column>,
  rows: ReadonlyArray<ReadonlyArray<Cell>>,
  options?: FormatOptions
): Either.Either<string, PgCopyError> =>
  Either.map(formatInto(columns, rows, options), ([buffer, used]) => buffer.toString("utf8", 0, used))

/**
 * {@link formatCsvRows}, as the UTF-8 bytes that go to PostgreSQL or to a spool file.
 *
 * @example
 * ```ts
 * const bytes = yield* formatCsvBytes(columns, rows, { table: "events" })
 * yield* copyFrom(client, copyCsvStatement("events", columns), Stream.make(bytes))
 * ```
 *
 * @since 0.1.0
 */
export const formatCsvBytes = (
  columns: ReadonlyArray<Column>,
  rows: ReadonlyArray<ReadonlyArray<Cell>>,
  options?: FormatOptions
): Either.Either<Uint8Array, PgCopyError> =>
  Either.map(formatInto(columns, rows, options), ([buffer, used]) =>
    // Hand back an exact copy when most of the buffer is slack, so a caller holding many batches does not
    // hold twice their size.
    used < buffer.length / 2 ? new Uint8Array(buffer.subarray(0, used)) : buffer.subarray(0, used)
  )

/**
 * A buffer that {@link formatCsvInto} formats into and grows, reused batch after batch: a spool that
 * writes each batch synchronously needs no new buffer per batch (each would be external memory that
 * only a later garbage collection gives back, tens of MB over a large load).
 *
 * @since 0.2.0
 */
export interface CsvScratch {
  buffer: Buffer
}

/**
 * A new {@link CsvScratch} of `bytes` bytes (it grows as batches need).
 *
 * @since 0.2.0
 */
export const makeCsvScratch = (bytes = 1 << 20): CsvScratch => ({ buffer: Buffer.allocUnsafe(bytes) })

/**
 * {@link formatCsvBytes} into `scratch`: the bytes are `scratch`'s buffer up to the returned length,
 * valid until the next call with the same scratch (write them out before).
 *
 * @example
 * ```ts
 * const scratch = PgCopy.makeCsvScratch()
 * const used = yield* PgCopy.formatCsvInto(columns, rows, scratch, { table: "events" })
 * NodeFs.writeSync(fd, scratch.buffer, 0, used)
 * ```
 *
 * @since 0.2.0
 */
export const formatCsvInto = (
  columns: ReadonlyArray<Column>,
  rows: ReadonlyArray<ReadonlyArray<Cell>>,
  scratch: CsvScratch,
  options?: FormatOptions
): Either.Either<number, PgCopyError> => Either.map(formatInto(columns, rows, options, scratch), ([, used]) => used)

// ---------------------------------------------------------------------------------------------------
// The transaction's pg client
// ---------------------------------------------------------------------------------------------------

const isPgClient = (value: unknown): value is ClientBase =>
  typeof value === "object" && value !== null && typeof (value as { readonly query?: unknown }).query === "function"

/**
 * The `pg` client of the current `sql.withTransaction` (an @effect/sql-pg `PgClient` transaction),
 * so a COPY can run on it and commit or roll back with the transaction. Run nothing else on the
 * transaction while a COPY is in flight.
 *
 * Fails outside a transaction, or when the transaction's connection carries no pg client (another
 * SQL driver, or an @effect/sql-pg version that stores it elsewhere: it reads the untyped `pg` field
 * that @effect/sql-pg 0.53 sets).
 *
 * @example
 * ```ts
 * const load = Effect.gen(function* () {
 *   const sql = yield* SqlClient.SqlClient
 *   return yield* sql.withTransaction(
 *     Effect.flatMap(transactionPgClient, (client) => copyFrom(client, statement, csvChunks))
 *   )
 * })
 * ```
 *
 * @since 0.1.0
 */
export const transactionPgClient: Effect.Effect<ClientBase, PgCopyError> = Effect.flatMap(
  Effect.serviceOption(SqlClient.TransactionConnection),
  Option.match({
    onNone: () =>
      Effect.fail(
        copyError(
          "no transaction is open; run the COPY inside sql.withTransaction so it commits with the rest of the load",
          {}
        )
      ),
    onSome: ([connection]) => {
      const client: unknown = (connection as unknown as { readonly pg?: unknown }).pg
      return isPgClient(client)
        ? Effect.succeed(client)
        : Effect.fail(
            copyError(
              "the transaction's connection carries no pg client (expected @effect/sql-pg 0.53's `pg` field); " +
                "use the PostgreSQL client from @effect/sql-pg 0.53, or update PgCopy for the installed version",
              {}
            )
          )
    }
  })
)

// ---------------------------------------------------------------------------------------------------
// COPY FROM STDIN
// ---------------------------------------------------------------------------------------------------

/** Options for {@link copyFrom} and {@link copyFromFile}. */
export interface CopyOptions {
  /** Named in errors. */
  readonly table?: string
}

interface DatabaseErrorFields {
  readonly message?: unknown
  readonly detail?: unknown
  readonly hint?: unknown
  readonly where?: unknown
}

/** The server's message with its detail, hint and position ("COPY t, line 3, column id: ..."). */
const describeFailure = (cause: unknown): string => {
  if (typeof cause !== "object" || cause === null) return String(cause)
  const fields = cause as DatabaseErrorFields
  const parts = [typeof fields.message === "string" ? fields.message : String(cause)]
  if (typeof fields.detail === "string") parts.push(`detail: ${fields.detail}`)
  if (typeof fields.hint === "string") parts.push(`hint: ${fields.hint}`)
  if (typeof fields.where === "string") parts.push(`at ${fields.where}`)
  return parts.join("; ")
}

// Long enough for the server to answer a CopyFail, short enough not to hang a shutdown if it never does.
const CLOSE_TIMEOUT = Duration.seconds(30)

/** Waits until the copy stream has closed, which after a destroy means the server has aborted the COPY. */
const awaitClose = (stream: CopyStreamQuery): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (stream.closed) {
      resume(Effect.void)
      return
    }
    const onClose = () => resume(Effect.void)
    stream.once("close", onClose)
    return Effect.sync(() => {
      stream.off("close", onClose)
    })
  }).pipe(Effect.timeoutOption(CLOSE_TIMEOUT), Effect.asVoid)

interface RunningCopy {
  readonly stream: CopyStreamQuery
  /** The first error the stream reported; once set, pg has dropped this COPY as its active query. */
  readonly failure: () => PgCopyError | undefined
}

/**
 * Destroying sends CopyFail: the server aborts the COPY, which fails (so rolls back) the transaction.
 * After an error there is nothing to abort, and nothing to wait for: a stream destroyed before the
 * server accepted the COPY never closes.
 */
const abortCopy = (copy: RunningCopy, why: string): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (copy.failure() !== undefined) return Effect.void
    if (!copy.stream.destroyed) copy.stream.destroy(new Error(why))
    return awaitClose(copy.stream)
  })

const startCopy = (client: ClientBase, statement: string, at: Location): Effect.Effect<RunningCopy, PgCopyError> =>
  Effect.try({
    try: () => {
      const stream = copyFromQuery(statement)
      let failure: PgCopyError | undefined
      // Stays attached for the stream's life: pg may report an error after we stopped waiting, and an
      // 'error' with no listener would crash the process.
      stream.on("error", (cause) => {
        failure ??= copyError(describeFailure(cause), at, cause)
        // pg-copy-streams drops its connection on a server error but would still flush writes Node has
        // buffered, and crash; destroying discards them.
        if (!stream.destroyed) stream.destroy()
      })
      client.query(stream)
      return { stream, failure: () => failure }
    },
    catch: (cause) => copyError(`could not start the COPY: ${describeFailure(cause)}`, at, cause)
  })

const CLOSED_EARLY = "the COPY stream closed before the data was complete; check the server log and the connection"

/** Resumes when the stream has drained ("drain") or finished ("finish"), failing on any error. */
const waitFor = (copy: RunningCopy, event: "drain" | "finish", at: Location): Effect.Effect<void, PgCopyError> =>
  Effect.async<void, PgCopyError>((resume) => {
    const { stream } = copy
    const already = copy.failure()
    if (already !== undefined) {
      resume(Effect.fail(already))
      return
    }
    if (event === "drain" ? !stream.writableNeedDrain : stream.writableFinished) {
      resume(Effect.void)
      return
    }
    const cleanup = () => {
      stream.off(event, onEvent)
      stream.off("error", onError)
      stream.off("close", onError)
    }
    const onEvent = () => {
      cleanup()
      resume(Effect.void)
    }
    const onError = () => {
      cleanup()
      resume(Effect.fail(copy.failure() ?? copyError(CLOSED_EARLY, at)))
    }
    stream.on(event, onEvent)
    stream.on("error", onError)
    stream.on("close", onError)
    return Effect.sync(cleanup)
  })

/** Writes items from `index` on, pausing for 'drain' whenever write() says the buffer is full. */
const writeItems = (
  copy: RunningCopy,
  items: ReadonlyArray<string | Uint8Array>,
  index: number,
  at: Location
): Effect.Effect<void, PgCopyError> =>
  Effect.suspend(() => {
    for (let i = index; i < items.length; i++) {
      const failure = copy.failure()
      if (failure !== undefined) return Effect.fail(failure)
      const item = items[i]!
      if (item.length === 0) continue
      if (!copy.stream.write(item)) {
        return i + 1 < items.length
          ? Effect.zipRight(waitFor(copy, "drain", at), writeItems(copy, items, i + 1, at))
          : waitFor(copy, "drain", at)
      }
    }
    return Effect.void
  })

/**
 * Runs `statement` (a `COPY ... FROM STDIN`) on `client` and streams `chunks` into it with
 * backpressure, succeeding with the number of rows PostgreSQL reports copied.
 *
 * On a failure of the stream, an error from the server (a bad row) or interruption, it aborts the
 * COPY (CopyFail) and waits for the server to acknowledge, so the surrounding transaction rolls back
 * and the connection stays usable. Use the client of the current transaction
 * ({@link transactionPgClient}) so the rows commit with the rest of the load.
 *
 * @example
 * ```ts
 * const copied = sql.withTransaction(
 *   Effect.gen(function* () {
 *     const client = yield* transactionPgClient
 *     const csv = yield* formatCsvRows(columns, rows)
 *     return yield* copyFrom(client, copyCsvStatement("events", columns), Stream.make(csv))
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 */
export const copyFrom = <E, R>(
  client: ClientBase,
  statement: string,
  chunks: Stream.Stream<string | Uint8Array, E, R>,
  options?: CopyOptions
): Effect.Effect<number, PgCopyError | E, R> => {
  const at: Location = { table: options?.table }
  return Effect.acquireUseRelease(
    startCopy(client, statement, at),
    (copy) =>
      Effect.gen(function* () {
        yield* Stream.runForEachChunk(chunks, (chunk) => writeItems(copy, Chunk.toReadonlyArray(chunk), 0, at))
        const failure = copy.failure()
        if (failure !== undefined) return yield* failure
        copy.stream.end()
        yield* waitFor(copy, "finish", at)
        return copy.stream.rowCount
      }),
    (copy, exit) =>
      Exit.isSuccess(exit)
        ? Effect.void
        : abortCopy(copy, Exit.isInterrupted(exit) ? "the load was interrupted" : "the load failed")
  )
}

/**
 * Runs `statement` (a `COPY ... FROM STDIN`) on `client` with the contents of the file at `filePath`
 * (CSV spooled by {@link formatCsvRows}), succeeding with the number of rows PostgreSQL reports
 * copied. Failure and interruption abort the COPY as in {@link copyFrom}.
 *
 * @example
 * ```ts
 * const copied = sql.withTransaction(
 *   Effect.flatMap(transactionPgClient, (client) =>
 *     copyFromFile(client, copyCsvStatement("events", columns), "/tmp/spool/events.csv", { table: "events" })
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 */
export const copyFromFile = (
  client: ClientBase,
  statement: string,
  filePath: string,
  options?: CopyOptions
): Effect.Effect<number, PgCopyError> => {
  const at: Location = { table: options?.table }
  return Effect.flatMap(startCopy(client, statement, at), (copy) =>
    Effect.async<number, PgCopyError>((resume) => {
      const controller = new AbortController()
      const file = createReadStream(filePath)
      pipeline(file, copy.stream, { signal: controller.signal }).then(
        () => resume(Effect.succeed(copy.stream.rowCount)),
        (cause: unknown) => {
          const fileError =
            typeof cause === "object" && cause !== null && "path" in cause && "syscall" in cause
              ? copyError(`cannot read the spool file ${filePath}: ${describeFailure(cause)}`, at, cause)
              : undefined
          resume(
            // Wait for the abort to reach the server before the caller rolls back.
            Effect.zipRight(
              abortCopy(copy, "the spool file could not be read"),
              Effect.fail(fileError ?? copy.failure() ?? copyError(describeFailure(cause), at, cause))
            )
          )
        }
      )
      return Effect.suspend(() => {
        controller.abort()
        return abortCopy(copy, "the load was interrupted")
      })
    })
  )
}
