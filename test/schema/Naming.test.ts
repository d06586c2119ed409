import { describe, expect, it } from "@effect/vitest"
import * as Naming from "../../src/internal/schema/Naming.js"
import cases from "./naming-cases.json" with { type: "json" }

describe("Naming (dlt's snake_case)", () => {
  it("gives dlt's own names for 130 inputs, at max length 63, 10 and unbounded", () => {
    for (const c of cases.identifiers) {
      expect([c.input, Naming.normalizeIdentifier(c.input)]).toEqual([c.input, c.max63])
      expect([c.input, Naming.normalizeIdentifier(c.input, 10)]).toEqual([c.input, c.max10])
      expect([c.input, Naming.normalizeIdentifier(c.input, 0)]).toEqual([c.input, c.unbounded])
    }
  })

  it("names variant columns as dlt does, shortened as a whole", () => {
    for (const v of cases.variants) {
      expect(Naming.variantColumn(v.column, v.data_type)).toBe(v.max63)
    }
  })

  it("maps the empty name (which dlt refuses) to `_`, which no other input produces", () => {
    expect(Naming.normalizeIdentifier("")).toBe("_")
    expect(Naming.normalizeIdentifier(" \t")).toBe("_")
    for (const c of cases.identifiers) expect(c.max63).not.toBe("_")
  })

  it("is idempotent on its own output, so a snake_case field maps to itself", () => {
    for (const c of cases.identifiers) expect(Naming.normalizeIdentifier(c.max63)).toBe(c.max63)
  })

  it("knows dlt's names", () => {
    expect(Naming.isDltName("_dlt_id")).toBe(true)
    expect(Naming.isDltName(Naming.normalizeIdentifier("__dlt_load_id"))).toBe(true)
    expect(Naming.isDltName("dlt_id")).toBe(false)
  })
})
