import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Either } from "effect"
import { normalizeIdentifier, TableNormalizer } from "../src/pipeline/Normalize.js"

const ids = () => "id"

describe("normalizeIdentifier", () => {
  it("follows dlt's snake_case", () => {
    expect(normalizeIdentifier("firstName")).toBe("first_name")
    expect(normalizeIdentifier("HTTPResponse")).toBe("http_response")
    expect(normalizeIdentifier("already_snake")).toBe("already_snake")
    expect(normalizeIdentifier("_id")).toBe("_id")
    expect(normalizeIdentifier("9lives")).toBe("_9lives")
    expect(normalizeIdentifier("")).toBe("_")
    expect(normalizeIdentifier('x"; DROP TABLE y; --')).toBe("x_drop_table_y_")
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
    expect(batch.columns.map((c) => `${c.name}:${c.type}`)).toEqual([
      "_dlt_load_id:text",
      "_dlt_id:text",
      "a:bigint",
      "b:text",
      "c:boolean",
      "value:text"
    ])
    expect(batch.rows).toEqual([
      ["load1", "id", 1, "x"],
      ["load1", "id", 2, null, true],
      ["load1", "id", null, null, null, "scalar"]
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
    expect(batch.rows[1]?.[col("at")]).toEqual(new Date("2024-02-01T10:00:00Z"))
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
})
