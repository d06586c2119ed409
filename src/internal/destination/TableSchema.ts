/**
 * Tables and columns as the normalizer infers them and destinations create them.
 *
 * @since 0.1.0
 */
import type { BigDecimal } from "effect"
import type { Timestamp } from "../../state/StateValue.js"

/**
 * The column types inferred from record values.
 *
 * @since 0.1.0
 */
export type ColumnType = "text" | "bigint" | "double" | "boolean" | "timestamp" | "decimal" | "bytes" | "json"

/**
 * A column. `nullable: false` means the destination creates the column NOT NULL: primary-key
 * columns and dlt's `_dlt_load_id` / `_dlt_id` (see `Normalize`, `StoredSchema.toTableSchema`).
 *
 * @since 0.1.0
 */
export interface Column {
  readonly name: string
  readonly type: ColumnType
  readonly nullable: boolean
  readonly primaryKey: boolean
}

/** @since 0.1.0 */
export type WriteDisposition = "append" | "replace" | "merge"

/** @since 0.1.0 */
export interface TableSchema {
  readonly name: string
  readonly writeDisposition: WriteDisposition
  readonly primaryKey: ReadonlyArray<string>
  readonly columns: ReadonlyArray<Column>
}

/**
 * One cell as it travels from the normalizer to a destination. `json` columns carry any JSON-able
 * value (object or array); every other type carries the JS value named in its `ColumnType`:
 * text → string, bigint → bigint, double → number, boolean → boolean, timestamp → Date or Timestamp,
 * decimal → BigDecimal, bytes → Uint8Array. `null` is a missing value.
 *
 * @since 0.1.0
 */
export type Cell =
  | null
  | string
  | number
  | bigint
  | boolean
  | Date
  | Timestamp
  | BigDecimal.BigDecimal
  | Uint8Array
  | JsonCell

/** @since 0.1.0 */
export type JsonCell = { readonly [key: string]: unknown } | ReadonlyArray<unknown>

/**
 * Rows of one table, each row aligned with `columns` (a row may be shorter: missing trailing cells
 * are null).
 *
 * @since 0.1.0
 */
export interface RowBatch {
  readonly table: string
  readonly columns: ReadonlyArray<Column>
  readonly rows: ReadonlyArray<ReadonlyArray<Cell>>
}

/**
 * A decimal cell as positional text with its scale kept (`1.50` stays `1.50`, as Python's
 * `str(Decimal)` and PostgreSQL's `numeric` keep it; `BigDecimal.format` would write `1.5`); a
 * negative scale is written out in zeros (`1E+3` as `1000`).
 *
 * @example
 * ```ts
 * decimalText(BigDecimal.unsafeFromString("-0.050")) // "-0.050"
 * ```
 *
 * @since 0.3.0
 */
export const decimalText = (value: BigDecimal.BigDecimal): string => {
  const { scale } = value
  if (scale <= 0) return (value.value * 10n ** BigInt(-scale)).toString()
  const negative = value.value < 0n
  const digits = (negative ? -value.value : value.value).toString().padStart(scale + 1, "0")
  return `${negative ? "-" : ""}${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`
}
