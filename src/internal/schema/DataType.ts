/**
 * dlt's column data types (`dlt/common/data_types/typing.py`) and how they map to the column types
 * pipestate's normalizer infers (`ColumnType` in `destination/TableSchema`).
 *
 * | pipestate `ColumnType` | dlt `data_type` | JS value in a cell |
 * | --- | --- | --- |
 * | `text` | `text` | string |
 * | `bigint` | `bigint` | number (safe integer) or bigint (64-bit) |
 * | `double` | `double` | number |
 * | `boolean` | `bool` | boolean |
 * | `timestamp` | `timestamp` | Date |
 * | `decimal` | `decimal` | BigDecimal |
 * | `bytes` | `binary` | Uint8Array |
 * | `json` | `json` | object or array |
 *
 * dlt's `date`, `time` and `wei` have no pipestate column type: a table dlt created with such a
 * column is kept in the stored schema as dlt wrote it, and `toColumnType` answers `None` for it.
 * dlt engines before 10 spelled `json` as `complex`; it is read as `json`.
 *
 * @since 0.2.0
 */
import { Option, Schema } from "effect"
import type { ColumnType } from "../destination/TableSchema.js"

/**
 * Every data type dlt knows.
 *
 * @since 0.2.0
 */
export const DataType = Schema.Literal(
  "text",
  "double",
  "bool",
  "timestamp",
  "bigint",
  "binary",
  "json",
  "decimal",
  "wei",
  "date",
  "time"
)

/**
 * @since 0.2.0
 */
export type DataType = typeof DataType.Type

const TO_DLT: { readonly [K in ColumnType]: DataType } = {
  text: "text",
  bigint: "bigint",
  double: "double",
  boolean: "bool",
  timestamp: "timestamp",
  decimal: "decimal",
  bytes: "binary",
  json: "json"
}

const FROM_DLT: Readonly<Record<string, ColumnType>> = {
  text: "text",
  bigint: "bigint",
  double: "double",
  bool: "boolean",
  timestamp: "timestamp",
  decimal: "decimal",
  binary: "bytes",
  json: "json",
  complex: "json"
}

/**
 * dlt's data type of a pipestate column type.
 *
 * @example
 * ```ts
 * fromColumnType("boolean") // "bool"
 * fromColumnType("bytes")   // "binary"
 * ```
 *
 * @since 0.2.0
 */
export const fromColumnType = (type: ColumnType): DataType => TO_DLT[type]

/**
 * The pipestate column type of a dlt data type; `None` for `date`, `time`, `wei` and anything
 * unknown.
 *
 * @example
 * ```ts
 * toColumnType("bool") // Option.some("boolean")
 * toColumnType("date") // Option.none()
 * ```
 *
 * @since 0.2.0
 */
export const toColumnType = (dataType: string): Option.Option<ColumnType> =>
  Object.hasOwn(FROM_DLT, dataType) ? Option.some(FROM_DLT[dataType]!) : Option.none()
