import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Either, Option } from "effect"
import {
  type NormalizeError,
  normalizeIdentifier,
  TableNormalizer,
  validateResource
} from "../src/internal/pipeline/Normalize.js"
import * as StoredSchema from "../src/internal/schema/StoredSchema.js"
import * as StateValue from "../src/state/StateValue.js"

const ids = () => "id"

describe("normalizeIdentifier", () => {
  it("follows dlt's snake_case", () => {
    expect(normalizeIdentifier("firstName")).toBe("first_name")
    expect(normalizeIdentifier("HTTPResponse")).toBe("http_response")
    expect(normalizeIdentifier("already_snake")).toBe("already_snake")
    expect(normalizeIdentifier("_id")).toBe("_id")
    expect(normalizeIdentifier("9lives")).toBe("_9lives")
    expect(normalizeIdentifier("")).toBe("_")
    expect(normalizeIdentifier('x"; DROP TABLE y; --')).toBe("x_drop_table_yxxx")
    expect(normalizeIdentifier("name_")).toBe("namex")
  })

  it("keeps identifiers within PostgreSQL's 63 bytes, distinct for distinct long names", () => {
    const a = normalizeIdentifier(`${"a".repeat(80)}1`)
    const b = normalizeIdentifier(`${"a".repeat(80)}2`)
    expect(a.length).toBeLessThanOrEqual(63)
    expect(a).not.toBe(b)
  })
})

describe("TableNormalizer", () => {
  it("infers types, adds columns as they appear and aligns rows with the columns", () => {
    const table = new TableNormalizer({ name: "t", writeDisposition: "append" })
    const batch = Either.getOrThrow(table.normalize([{ a: 1, b: "x" }, { a: 2, c: true }, "scalar"], "load1", ids))
    // dlt's order: the first record's fields, then _dlt_load_id and _dlt_id, then later columns
    expect(batch.columns.map((c) => `${c.name}:${c.type}`)).toEqual([
      "a:bigint",
      "b:text",
      "_dlt_load_id:text",
      "_dlt_id:text",
      "c:boolean",
      "value:text"
    ])
    expect(batch.rows).toEqual([
      [1, "x", "load1", "id"],
      [2, null, "load1", "id", true],
      [null, null, "load1", "id", null, "scalar"]
    ])
  })

  it("coerces what fits and sends what does not to a variant column, as dlt does", () => {
    const table = new TableNormalizer({ name: "t", writeDisposition: "append" })
    const batch = Either.getOrThrow(
      table.normalize(
        [
          { price: 1, label: "a", at: new Date("2024-01-01T00:00:00Z") },
          { price: 1.5, label: 7, at: "2024-02-01T10:00:00Z" },
          { price: 2n ** 70n, at: "not a date" }
        ],
        "l",
        ids
      )
    )
    const names = batch.columns.map((c) => `${c.name}:${c.type}`)
    expect(names).toContain("price__v_double:double")
    expect(names).toContain("price__v_decimal:decimal")
    expect(names).toContain("at__v_text:text")
    const col = (name: string) => batch.columns.findIndex((c) => c.name === name)
    expect(batch.rows[1]?.[col("label")]).toBe("7")
    expect(String(batch.rows[1]?.[col("at")])).toBe("2024-02-01T10:00:00+00:00")
    expect(batch.rows[1]?.[col("price__v_double")]).toBe(1.5)
    expect(batch.rows[2]?.[col("price__v_decimal")]).toEqual(BigDecimal.fromBigInt(2n ** 70n))
    expect(batch.rows[2]?.[col("at__v_text")]).toBe("not a date")
  })

  it("starts from the destination's existing columns", () => {
    const table = new TableNormalizer({
      name: "t",
      writeDisposition: "merge",
      primaryKey: ["userId"],
      existing: [
        { name: "amount", type: "double" },
        { name: "user_id", type: "bigint" }
      ]
    })
    const batch = Either.getOrThrow(table.normalize([{ amount: 3, userId: 1 }], "l", ids))
    expect(batch.columns.find((c) => c.name === "amount")?.type).toBe("double")
    expect(batch.columns.find((c) => c.name === "user_id")?.primaryKey).toBe(true)
    expect(table.schema().primaryKey).toEqual(["user_id"])
  })

  it("coerces nothing that would lose digits: a bigint a double rounds goes to a variant, a decimal into text keeps its scale", () => {
    const table = new TableNormalizer({ name: "t", writeDisposition: "append" })
    Either.getOrThrow(table.normalize([{ f: 1.5, s: "x" }], "l", ids))
    const batch = Either.getOrThrow(
      table.normalize([{ f: 2n ** 62n + 1n, s: BigDecimal.unsafeFromString("1.50") }, { f: 2n ** 52n }], "l", ids)
    )
    const at = (name: string) => batch.columns.findIndex((c) => c.name === name)
    expect(batch.rows[0]![at("f__v_bigint")]).toBe(2n ** 62n + 1n)
    expect(batch.rows[0]![at("s")]).toBe("1.50")
    expect(batch.rows[1]![at("f")]).toBe(2 ** 52)
  })

  it("reads ISO text into a timestamp column exactly, whatever the machine's time zone", () => {
    const zone = process.env.TZ
    process.env.TZ = "Asia/Tokyo"
    try {
      const table = new TableNormalizer({ name: "t", writeDisposition: "append" })
      Either.getOrThrow(table.normalize([{ at: new Date(0) }], "l", ids))
      const batch = Either.getOrThrow(
        table.normalize([{ at: "2024-01-01T10:00:00" }, { at: "2024-02-02T10:00:00.123456Z" }], "l", ids)
      )
      const at = batch.columns.findIndex((c) => c.name === "at")
      expect(batch.rows.map((r) => String(r[at]))).toEqual([
        "2024-01-01T10:00:00+00:00",
        "2024-02-02T10:00:00.123456+00:00"
      ])
    } finally {
      if (zone === undefined) delete process.env.TZ
      else process.env.TZ = zone
    }
  })

  it("rejects values no column can hold, naming the table and column", () => {
    const table = new TableNormalizer({ name: "t", writeDisposition: "append" })
    const result = table.normalize([{ ok: 1 }, { fn: () => 1 }], "l", ids)
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      expect(result.left).toMatchObject({ _tag: "UnsupportedValue", table: "t", column: "fn" })
    }
    const map = table.normalize([{ m: new Map() }], "l", ids)
    expect(Either.isLeft(map) && map.left.message).toContain("Map")
  })

  it("rejects a value inside an object or array that JSON would drop, empty or rewrite, naming where it is", () => {
    const cases: ReadonlyArray<readonly [unknown, string, string]> = [
      [{ dec: BigDecimal.unsafeFromString("1.50") }, "a BigDecimal", ".dec"],
      [{ bin: new Uint8Array([1, 2]) }, "Uint8Array", ".bin"],
      [{ m: new Map([[1, 2]]) }, "Map", ".m"],
      [[1, { s: new Set([1]) }], "Set", "[1].s"],
      [{ "odd key": { f: () => 1 } }, "a function", '["odd key"].f'],
      [{ n: 1n }, "a bigint", ".n"],
      [{ o: Option.some(1) }, "an Effect Option", ".o"]
    ]
    for (const [value, what, path] of cases) {
      const table = new TableNormalizer({ name: "t", writeDisposition: "append" })
      const error = failure(table.normalize([{ id: 1, nested: value }], "l", ids))
      expect(error).toMatchObject({ _tag: "UnsupportedValue", table: "t", column: "nested", nested: true })
      expect(error.message).toContain(what)
      expect(error.message).toContain(`at ${path}`)
    }
    const cycle: Record<string, unknown> = { a: 1 }
    cycle.self = cycle
    expect(
      failure(new TableNormalizer({ name: "t", writeDisposition: "append" }).normalize([{ c: cycle }], "l", ids))
        .message
    ).toContain("a cycle?")
    // what JSON writes as it is: plain values, Dates and Timestamps (their text), undefined keys
    const fine = new TableNormalizer({ name: "t", writeDisposition: "append" })
    const batch = fine.normalize(
      [
        {
          j: {
            d: new Date(0),
            t: StateValue.Timestamp.fromDate(new Date(0)),
            list: [1, "x", null, true, { deep: [] }],
            gone: undefined
          }
        }
      ],
      "l",
      ids
    )
    expect(Either.isRight(batch)).toBe(true)
  })
})

const failure = (result: Either.Either<unknown, NormalizeError>): NormalizeError => {
  if (Either.isRight(result)) throw new Error("expected the chunk to fail")
  return result.left
}

/** the stored table after a run, as the next run reads it */
const storedAfter = (table: TableNormalizer): StoredSchema.Table => {
  const schema = StoredSchema.mergeTables(StoredSchema.empty("s"), [table.storedTable()])
  return Either.getOrThrow(StoredSchema.fromText(StoredSchema.toText(schema))).tables[table.name]!
}

describe("TableNormalizer: no two fields in one column", () => {
  it("refuses two fields of one record that map to one column, naming both, the table and the column", () => {
    const t = new TableNormalizer({ name: "users", resource: "users_api", writeDisposition: "append" })
    const e = failure(t.normalize([{ userId: "a", user_id: "b" }], "l", ids))
    expect(e).toMatchObject({
      _tag: "ColumnNameCollision",
      resource: "users_api",
      table: "users",
      column: "user_id",
      fields: ["userId", "user_id"],
      position: 0
    })
    expect(e.message).toContain('"userId" and "user_id"')
    const f = failure(
      new TableNormalizer({ name: "t", writeDisposition: "append" }).normalize(
        [{ "na!e": "Max", "na%e": "Germany" }],
        "l",
        ids
      )
    )
    expect(f).toMatchObject({ _tag: "ColumnNameCollision", column: "na_e", fields: ["na!e", "na%e"] })
  })

  it("refuses them across records of a run, at the record that brings the second field", () => {
    const t = new TableNormalizer({ name: "t", writeDisposition: "append" })
    Either.getOrThrow(t.normalize([{ Name: "a" }], "l", ids))
    const e = failure(t.normalize([{ Name: "b" }, { name: "c" }], "l", ids, { resource: "r", offset: 10 }))
    expect(e).toMatchObject({ _tag: "ColumnNameCollision", column: "name", fields: ["Name", "name"], position: 11 })
  })

  it("keeps the field → column map across runs through the stored schema", () => {
    const run1 = new TableNormalizer({ name: "t", writeDisposition: "append" })
    Either.getOrThrow(run1.normalize([{ userId: "a" }], "l", ids))
    const stored = storedAfter(run1)
    expect(stored.columns.user_id).toMatchObject({ data_type: "text", [StoredSchema.FIELD_HINT]: "userId" })
    // run 2: the same field still lands in its column; a third spelling of it is refused
    const run2 = new TableNormalizer({ name: "t", writeDisposition: "append", stored })
    const ok = Either.getOrThrow(run2.normalize([{ userId: "b" }], "l", ids))
    expect(ok.rows[0]![ok.columns.findIndex((c) => c.name === "user_id")]).toBe("b")
    expect(failure(run2.normalize([{ UserId: "c" }], "l", ids))).toMatchObject({
      _tag: "ColumnNameCollision",
      fields: ["userId", "UserId"]
    })
    // in that same run, the column's own spelling is a second field too
    expect(failure(run2.normalize([{ user_id: "d" }], "l", ids))).toMatchObject({
      _tag: "ColumnNameCollision",
      fields: ["userId", "user_id"]
    })
  })

  it("does not depend on the order of runs: a field spelled like its column and one other spelling share it either way", () => {
    const across = (first: string, second: string) => {
      const run1 = new TableNormalizer({ name: "t", writeDisposition: "append" })
      Either.getOrThrow(run1.normalize([{ [first]: "a" }], "l", ids))
      const run2 = new TableNormalizer({ name: "t", writeDisposition: "append", stored: storedAfter(run1) })
      const batch = run2.normalize([{ [second]: "b" }], "l", ids)
      const run3 = new TableNormalizer({ name: "t", writeDisposition: "append", stored: run2.storedTable() })
      return { second: batch, third: run3.normalize([{ [first]: "c" }], "l", ids) }
    }
    for (const [a, b] of [
      ["name", "Name"],
      ["Name", "name"],
      ["user_id", "userId"],
      ["userId", "user_id"]
    ] as const) {
      const { second, third } = across(a, b)
      expect(Either.isRight(second), `${a} then ${b}`).toBe(true)
      expect(Either.isRight(third), `${a}, ${b}, then ${a} again`).toBe(true)
    }
    // two spellings that both differ from the column are refused in either order
    for (const [a, b] of [
      ["userId", "UserId"],
      ["UserId", "userId"]
    ] as const) {
      expect(failure(across(a, b).second)).toMatchObject({ _tag: "ColumnNameCollision", fields: [a, b] })
    }
  })

  it("follows the stored map even where today's naming would give another name", () => {
    const stored: StoredSchema.Table = {
      name: "t",
      resource: "t",
      columns: { old_name: { name: "old_name", data_type: "text", nullable: true, [StoredSchema.FIELD_HINT]: "name_" } }
    }
    const t = new TableNormalizer({ name: "t", writeDisposition: "append", stored })
    const batch = Either.getOrThrow(t.normalize([{ name_: "kept" }], "l", ids))
    expect(batch.columns.map((c) => c.name)).toEqual(["old_name", "_dlt_load_id", "_dlt_id"])
    expect(batch.rows[0]![0]).toBe("kept")
  })

  it("lets the first field of a run claim a column whose field is not recorded (made by dlt)", () => {
    const stored: StoredSchema.Table = {
      name: "t",
      resource: "t",
      columns: { user_id: { name: "user_id", data_type: "text", nullable: true } }
    }
    const t = new TableNormalizer({ name: "t", writeDisposition: "append", stored })
    Either.getOrThrow(t.normalize([{ userId: "a" }], "l", ids))
    expect(t.storedTable().columns.user_id).toMatchObject({ [StoredSchema.FIELD_HINT]: "userId" })
    expect(failure(t.normalize([{ user_id: "b" }], "l", ids))._tag).toBe("ColumnNameCollision")
  })

  it("refuses fields named like dlt's columns", () => {
    for (const field of ["_dlt_id", "_dlt_load_id", "__dlt_id", "_dlt_anything"]) {
      const e = failure(
        new TableNormalizer({ name: "t", writeDisposition: "append" }).normalize([{ a: 1, [field]: "x" }], "l", ids)
      )
      expect(e).toMatchObject({ _tag: "ReservedColumnName", field, table: "t" })
    }
  })

  it("never lets a field take a variant column", () => {
    const t = new TableNormalizer({ name: "t", writeDisposition: "append" })
    const batch = Either.getOrThrow(t.normalize([{ price: 1 }, { price: 1.5 }, { price__v_double: 2.5 }], "l", ids))
    // a field spelled like a variant is its own column (snake_case collapses "__")
    expect(batch.columns.map((c) => c.name)).toEqual([
      "price",
      "_dlt_load_id",
      "_dlt_id",
      "price__v_double",
      "price_v_double"
    ])
  })
})

describe("TableNormalizer: primary keys", () => {
  const users = (stored?: StoredSchema.Table) =>
    new TableNormalizer({
      name: "users",
      resource: "users",
      writeDisposition: "merge",
      primaryKey: ["id"],
      ...(stored === undefined ? {} : { stored })
    })

  it("makes key columns NOT NULL, in the destination's table and in the stored schema", () => {
    const t = users()
    Either.getOrThrow(t.normalize([{ id: 1, name: "a" }], "l", ids))
    const id = t.schema().columns.find((c) => c.name === "id")
    expect(id).toMatchObject({ primaryKey: true, nullable: false })
    expect(t.schema().columns.find((c) => c.name === "name")).toMatchObject({ nullable: true })
    expect(t.storedTable().columns.id).toEqual({ name: "id", nullable: false, primary_key: true, data_type: "bigint" })
  })

  it("fails a record whose key is missing or null, naming resource, table, column and position", () => {
    const t = users()
    const missing = failure(t.normalize([{ id: 1 }, { name: "x" }], "l", ids, { resource: "users_api", offset: 40 }))
    expect(missing).toMatchObject({
      _tag: "MissingPrimaryKey",
      resource: "users_api",
      table: "users",
      column: "id",
      position: 41,
      found: "missing"
    })
    expect(missing.message).toContain("record 41")
    expect(failure(users().normalize([{ id: null, name: "x" }], "l", ids))).toMatchObject({
      found: "null",
      position: 0
    })
    expect(failure(users().normalize([{ name: "x" }], "l", ids))).toMatchObject({ found: "missing", position: 0 })
    expect(failure(users().normalize([{ id: undefined }], "l", ids))._tag).toBe("MissingPrimaryKey")
  })

  it("replays issue 9's merge scenario: a text key is coerced, keyless records fail", () => {
    const run1 = users()
    Either.getOrThrow(run1.normalize([{ id: 1, name: "a" }], "l1", ids))
    const stored = storedAfter(run1)
    // run 2: "1" is the same key as 1, in the key column (no id__v_text)
    const run2 = users(stored)
    const batch = Either.getOrThrow(run2.normalize([{ id: "1", name: "a2" }], "l2", ids))
    expect(batch.columns.map((c) => c.name)).toEqual(["id", "name", "_dlt_load_id", "_dlt_id"])
    expect(batch.rows[0]![0]).toBe(1)
    // run 3: records without a key fail instead of collapsing into one NULL key
    expect(failure(users(stored).normalize([{ name: "x" }, { name: "y" }], "l3", ids))._tag).toBe("MissingPrimaryKey")
  })

  it("coerces key values only without loss", () => {
    const keyOf = (column: StoredSchema.Column, value: unknown) => {
      const stored: StoredSchema.Table = { name: "users", resource: "users", columns: { id: column } }
      return users(stored).normalize([{ id: value }], "l", ids)
    }
    const bigintKey: StoredSchema.Column = { name: "id", nullable: false, primary_key: true, data_type: "bigint" }
    const cell = (result: Either.Either<{ rows: ReadonlyArray<ReadonlyArray<unknown>> }, NormalizeError>) =>
      Either.getOrThrow(result).rows[0]![0]
    expect(cell(keyOf(bigintKey, "42"))).toBe(42)
    expect(cell(keyOf(bigintKey, "-7"))).toBe(-7)
    expect(cell(keyOf(bigintKey, "9007199254740993"))).toBe(9007199254740993n)
    expect(cell(keyOf(bigintKey, BigDecimal.unsafeFromString("12")))).toBe(12)
    expect(cell(keyOf(bigintKey, 2n ** 62n))).toBe(2n ** 62n)
    for (const bad of [
      "01",
      "1.0",
      " 1",
      "abc",
      "",
      1.5,
      true,
      2n ** 64n,
      "9223372036854775808",
      BigDecimal.unsafeFromString("1.5")
    ]) {
      const e = failure(keyOf(bigintKey, bad))
      expect(e).toMatchObject({ _tag: "InvalidPrimaryKeyValue", column: "id", table: "users", position: 0 })
    }
    const textKey: StoredSchema.Column = { name: "id", nullable: false, primary_key: true, data_type: "text" }
    expect(cell(keyOf(textKey, 7))).toBe("7")
    expect(cell(keyOf(textKey, 2n ** 70n))).toBe(String(2n ** 70n))
    expect(failure(keyOf(textKey, 1.5))._tag).toBe("InvalidPrimaryKeyValue")
    expect(failure(keyOf(textKey, true))._tag).toBe("InvalidPrimaryKeyValue")
    const tsKey: StoredSchema.Column = { name: "id", nullable: false, primary_key: true, data_type: "timestamp" }
    // exactly: microseconds and offsets kept, no offset read as UTC (as dlt), never the machine's zone
    const tsText = (text: string) => String(cell(keyOf(tsKey, text)))
    expect(tsText("2024-01-01T00:00:00.123Z")).toBe("2024-01-01T00:00:00.123000+00:00")
    expect(tsText("2024-01-01T00:00:00.123456Z")).toBe("2024-01-01T00:00:00.123456+00:00")
    expect(tsText("2024-01-01T00:00:00")).toBe("2024-01-01T00:00:00+00:00")
    expect(tsText("2024-01-01 10:00+05:30")).toBe("2024-01-01T10:00:00+05:30")
    // more digits than a timestamp holds would lose information
    expect(failure(keyOf(tsKey, "2024-01-01T00:00:00.1234567Z"))._tag).toBe("InvalidPrimaryKeyValue")
    const decimalKey: StoredSchema.Column = { name: "id", nullable: false, primary_key: true, data_type: "decimal" }
    // the scale is kept: 1.50 stays 150 x 10^-2
    expect(cell(keyOf(decimalKey, "1.50"))).toMatchObject({ value: 150n, scale: 2 })
    expect(failure(keyOf(decimalKey, 0.1))._tag).toBe("InvalidPrimaryKeyValue")
  })

  it("never sends a key to a variant column, and refuses object keys", () => {
    const t = users()
    Either.getOrThrow(t.normalize([{ id: 1 }], "l", ids))
    expect(failure(t.normalize([{ id: "x" }], "l", ids))._tag).toBe("InvalidPrimaryKeyValue")
    expect(t.schema().columns.map((c) => c.name)).toEqual(["id", "_dlt_load_id", "_dlt_id"])
    expect(failure(users().normalize([{ id: { a: 1 } }], "l", ids))).toMatchObject({
      _tag: "InvalidPrimaryKeyValue",
      reason: "a key must be a single value, not an object or array"
    })
  })

  it("moves the primary key when the resource's key changes", () => {
    const run1 = users()
    Either.getOrThrow(run1.normalize([{ id: 1, email: "a@x" }], "l", ids))
    const run2 = new TableNormalizer({
      name: "users",
      writeDisposition: "merge",
      primaryKey: ["email"],
      stored: storedAfter(run1)
    })
    Either.getOrThrow(run2.normalize([{ id: 1, email: "a@x" }], "l", ids))
    const columns = run2.storedTable().columns
    expect(columns.email).toMatchObject({ primary_key: true, nullable: false })
    expect(columns.id?.primary_key).toBeUndefined()
    expect(run2.schema().primaryKey).toEqual(["email"])
  })
})

describe("validateResource", () => {
  it("refuses merge without a primary key, saying what to do", () => {
    const result = validateResource("shop", { name: "users", writeDisposition: "merge", primaryKey: [] })
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      expect(result.left).toMatchObject({ _tag: "InvalidResourceKeys", source: "shop", resource: "users" })
      expect(result.left.message).toContain("primaryKey")
      expect(result.left.message).toContain('"append"')
    }
  })

  it("refuses keys that name one column twice or a dlt column, and accepts the rest", () => {
    expect(
      Either.isLeft(validateResource("s", { name: "r", writeDisposition: "merge", primaryKey: ["id", "ID"] }))
    ).toBe(true)
    expect(
      Either.isLeft(validateResource("s", { name: "r", writeDisposition: "append", primaryKey: ["_dlt_id"] }))
    ).toBe(true)
    expect(Either.isRight(validateResource("s", { name: "r", writeDisposition: "merge", primaryKey: ["id"] }))).toBe(
      true
    )
    expect(Either.isRight(validateResource("s", { name: "r", writeDisposition: "append", primaryKey: [] }))).toBe(true)
    expect(Either.isRight(validateResource("s", { name: "r", writeDisposition: "replace", primaryKey: [] }))).toBe(true)
  })
})

describe("TableNormalizer: the stored table", () => {
  it("continues a stored table: same positions and types, new columns at the end, no change when nothing is new", () => {
    const run1 = new TableNormalizer({ name: "t", writeDisposition: "append" })
    Either.getOrThrow(run1.normalize([{ a: 1, b: "x" }], "l", ids))
    const stored = storedAfter(run1)
    const run2 = new TableNormalizer({ name: "t", writeDisposition: "append", stored })
    const same = Either.getOrThrow(run2.normalize([{ b: "y", a: 2 }], "l", ids))
    expect(same.columns.map((c) => c.name)).toEqual(["a", "b", "_dlt_load_id", "_dlt_id"])
    const schema = StoredSchema.bump(StoredSchema.mergeTables(StoredSchema.empty("s"), [stored]))
    expect(StoredSchema.bump(StoredSchema.mergeTables(schema, [run2.storedTable()]))).toBe(schema)
    Either.getOrThrow(run2.normalize([{ a: "text" }], "l", ids))
    const next = StoredSchema.bump(StoredSchema.mergeTables(schema, [run2.storedTable()]))
    expect(next.version).toBe(schema.version + 1)
    expect(next.tables.t!.columns.a__v_text).toEqual({
      name: "a__v_text",
      data_type: "text",
      nullable: true,
      variant: true
    })
  })

  it("keeps a stored column of a type pipestate has no column type for", () => {
    const stored: StoredSchema.Table = {
      name: "t",
      resource: "t",
      columns: { day: { name: "day", data_type: "date", nullable: true } }
    }
    const t = new TableNormalizer({ name: "t", writeDisposition: "append", stored })
    Either.getOrThrow(t.normalize([{ day: "2024-01-01" }], "l", ids))
    expect(t.storedTable().columns.day).toEqual({ name: "day", data_type: "date", nullable: true })
  })
})

describe("TableNormalizer: dlt's columns", () => {
  it("are part of a table before its first row (a replace table that received none)", () => {
    const t = new TableNormalizer({ name: "t", writeDisposition: "replace" })
    expect(t.schema().columns.map((c) => `${c.name}:${c.nullable}`)).toEqual(["_dlt_load_id:false", "_dlt_id:false"])
    expect(Object.keys(t.storedTable().columns)).toEqual(["_dlt_load_id", "_dlt_id"])
    expect(t.storedTable()["x-normalizer"]).toBeUndefined()
  })
})
