/**
 * Records become rows: column names normalized (snake_case, as dlt does), column types inferred
 * from values, new columns added as they appear, a value that does not fit its column's type goes
 * to a variant column `<column>__v_<type>` (dlt's rule), and `_dlt_load_id` / `_dlt_id` are added.
 * Works a chunk at a time.
 *
 * @since 0.1.0
 */
import { BigDecimal, Either, Schema } from "effect"
import type { ExistingColumn } from "../destination/Destination.js"
import type { Cell, Column, ColumnType, RowBatch, TableSchema, WriteDisposition } from "../destination/TableSchema.js"
import { isStateValue, Timestamp } from "../state/StateValue.js"

/**
 * A record holds a value no column type can hold (a function, a symbol, a class instance, an
 * invalid date).
 *
 * @since 0.1.0
 */
export class UnsupportedValue extends Schema.TaggedError<UnsupportedValue>()("UnsupportedValue", {
  table: Schema.String,
  column: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `table ${this.table}, column ${this.column}: ${this.reason}; convert it to a string, number, boolean, Date, BigDecimal, Uint8Array, plain object or array in the resource`
  }
}

/** Identifiers longer than this are shortened with a hash suffix (PostgreSQL's limit is 63 bytes). */
const MAX_IDENTIFIER = 63

const hash32 = (text: string): string => {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0).toString(36)
}

/**
 * dlt's snake_case naming: camelCase split, lower case, anything outside `[a-z0-9_]` becomes `_`,
 * a leading digit gets a `_` prefix. The result is always a safe SQL identifier body.
 *
 * @example
 * ```ts
 * normalizeIdentifier("firstName")      // "first_name"
 * normalizeIdentifier("x\"; DROP TABLE y; --") // "x_drop_table_y_"
 * ```
 *
 * @since 0.1.0
 */
export const normalizeIdentifier = (name: string): string => {
  let out = name
    .trim()
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2")
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, "_")
  if (out === "") out = "_"
  if (/^[0-9]/.test(out)) out = `_${out}`
  if (out.length > MAX_IDENTIFIER) {
    const suffix = hash32(name)
    out = `${out.slice(0, MAX_IDENTIFIER - suffix.length - 1)}_${suffix}`
  }
  return out
}

type Inferred = ColumnType | null | UnsupportedReason

interface UnsupportedReason {
  readonly unsupported: string
}

const isPlainObject = (value: object): boolean => {
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

const infer = (value: unknown): Inferred => {
  switch (typeof value) {
    case "string":
      return "text"
    case "number":
      return Number.isSafeInteger(value) ? "bigint" : "double"
    case "bigint":
      return "bigint"
    case "boolean":
      return "boolean"
    case "undefined":
      return null
    case "object": {
      if (value === null) return null
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? { unsupported: "an invalid Date" } : "timestamp"
      if (value instanceof Timestamp) return isStateValue(value) ? "timestamp" : { unsupported: "an invalid Timestamp" }
      if (value instanceof Uint8Array) return "bytes"
      if (BigDecimal.isBigDecimal(value)) return "decimal"
      if (Array.isArray(value) || isPlainObject(value)) return "json"
      return { unsupported: `an instance of ${value.constructor?.name ?? "a class"}` }
    }
    default:
      return { unsupported: `a ${typeof value}` }
  }
}

const INT8_MIN = -(2n ** 63n)
const INT8_MAX = 2n ** 63n - 1n

/** Converts `value` (inferred as `from`) into a cell of a column of type `to`, or undefined when it does not fit. */
const coerce = (value: unknown, from: ColumnType, to: ColumnType): Cell | undefined => {
  if (from === to) {
    if (to === "bigint" && typeof value === "bigint" && (value < INT8_MIN || value > INT8_MAX)) return undefined
    return value as Cell
  }
  switch (to) {
    case "double":
      if (from === "bigint") return Number(value)
      return undefined
    case "text":
      if (from === "timestamp") return (value as Date).toISOString()
      if (from === "decimal") return BigDecimal.format(value as BigDecimal.BigDecimal)
      if (from === "bigint" || from === "double" || from === "boolean") return String(value)
      return undefined
    case "decimal":
      if (from === "bigint" || from === "double") {
        return Either.getOrUndefined(Either.fromOption(BigDecimal.fromString(String(value)), () => undefined))
      }
      return undefined
    case "timestamp":
      if (from === "text" && ISO_TIMESTAMP.test(value as string)) {
        const date = new Date(value as string)
        return Number.isNaN(date.getTime()) ? undefined : date
      }
      return undefined
    default:
      return undefined
  }
}

const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/

/**
 * Turns records of one table into row batches, keeping the table's columns across chunks.
 *
 * @since 0.1.0
 */
export class TableNormalizer {
  readonly name: string
  readonly writeDisposition: WriteDisposition
  readonly primaryKey: ReadonlyArray<string>
  private readonly columns: Array<Column> = []
  private readonly index = new Map<string, number>()
  private readonly names = new Map<string, string>()
  private rowCount = 0

  constructor(options: {
    readonly name: string
    readonly writeDisposition: WriteDisposition
    readonly primaryKey?: ReadonlyArray<string>
    readonly existing?: ReadonlyArray<ExistingColumn>
  }) {
    this.name = options.name
    this.writeDisposition = options.writeDisposition
    this.primaryKey = (options.primaryKey ?? []).map(normalizeIdentifier)
    for (const column of options.existing ?? []) {
      this.addColumn(column.name, column.type ?? "text")
    }
    this.addColumn("_dlt_load_id", "text")
    this.addColumn("_dlt_id", "text")
  }

  /** rows normalized so far */
  get rows(): number {
    return this.rowCount
  }

  /** the table as it stands now */
  schema(): TableSchema {
    return {
      name: this.name,
      writeDisposition: this.writeDisposition,
      primaryKey: this.primaryKey,
      columns: [...this.columns]
    }
  }

  private addColumn(name: string, type: ColumnType): number {
    const existing = this.index.get(name)
    if (existing !== undefined) return existing
    const position = this.columns.length
    this.columns.push({ name, type, nullable: true, primaryKey: this.primaryKey.includes(name) })
    this.index.set(name, position)
    return position
  }

  private columnName(key: string): string {
    let name = this.names.get(key)
    if (name === undefined) {
      name = normalizeIdentifier(key)
      this.names.set(key, name)
    }
    return name
  }

  /**
   * Normalizes one chunk of records. `ids` yields one `_dlt_id` per row.
   */
  normalize(records: Iterable<unknown>, loadId: string, ids: () => string): Either.Either<RowBatch, UnsupportedValue> {
    const rows: Array<Array<Cell>> = []
    const loadIdColumn = this.index.get("_dlt_load_id")!
    const idColumn = this.index.get("_dlt_id")!
    for (const raw of records) {
      const record: Record<string, unknown> =
        typeof raw === "object" && raw !== null && !Array.isArray(raw) && isPlainObject(raw)
          ? (raw as Record<string, unknown>)
          : { value: raw }
      const row: Array<Cell> = []
      for (const key in record) {
        const value = record[key]
        const type = infer(value)
        if (type === null) continue
        const name = this.columnName(key)
        if (typeof type === "object") {
          return Either.left(
            new UnsupportedValue({ table: this.name, column: name, reason: `the value is ${type.unsupported}` })
          )
        }
        let position = this.index.get(name)
        if (position === undefined) position = this.addColumn(name, type)
        const column = this.columns[position]!
        let cell = coerce(value, type, column.type)
        if (cell === undefined) {
          if (type === "bigint" && typeof value === "bigint" && column.type === "bigint") {
            // beyond int8: keep it exactly as a decimal
            position = this.addColumn(`${name}__v_decimal`, "decimal")
            cell = BigDecimal.fromBigInt(value)
          } else {
            position = this.addColumn(`${name}__v_${type}`, type)
            cell = value as Cell
          }
        }
        while (row.length < position) row.push(null)
        row[position] = cell
      }
      while (row.length <= Math.max(loadIdColumn, idColumn)) row.push(null)
      row[loadIdColumn] = loadId
      row[idColumn] = ids()
      rows.push(row)
    }
    this.rowCount += rows.length
    return Either.right({ table: this.name, columns: [...this.columns], rows })
  }
}
