import { describe, expect, it } from "vitest"
import { BigDecimal, Either, Option } from "effect"
import { normalizeArgv } from "../../src/cli/main.js"
import * as Render from "../../src/cli/Render.js"
import * as StateValue from "../../src/state/StateValue.js"

describe("Render", () => {
  it("pretty-prints state values with their types visible", () => {
    const value = {
      at: new Date(0),
      amount: BigDecimal.unsafeFromString("1.50"),
      id: Either.getOrThrow(StateValue.makeUuid("6F9619FF-8B86-D011-B42D-00C04FC964FF")),
      day: Either.getOrThrow(StateValue.makeCalendarDate("2024-01-31")),
      raw: new Uint8Array([1, 255]),
      list: [1, "two", null],
      empty: {}
    }
    expect(Render.prettyValue(value)).toBe(
      [
        "{",
        '  "at": datetime(1970-01-01T00:00:00.000Z),',
        '  "amount": decimal(1.50),',
        '  "id": uuid(6f9619ff-8b86-d011-b42d-00c04fc964ff),',
        '  "day": date(2024-01-31),',
        '  "raw": bytes(2: 01ff),',
        '  "list": [',
        "    1,",
        '    "two",',
        "    null",
        "  ],",
        '  "empty": {}',
        "}"
      ].join("\n")
    )
    expect(Render.displayJson(value)).toEqual({
      at: "1970-01-01T00:00:00.000Z",
      amount: "1.50",
      id: "6f9619ff-8b86-d011-b42d-00c04fc964ff",
      day: "2024-01-31",
      raw: "Af8=",
      list: [1, "two", null],
      empty: {}
    })
  })

  it("cuts long values with a marker, between lines when it can", () => {
    expect(Render.cut("short", 10)).toBe("short")
    expect(Render.cut("x".repeat(12_345 + 10), 10)).toBe("xxxxxxxxxx… (12,345 more chars)")
    expect(Render.cut("[\n  1,\n  2,\n  3\n]", 10)).toBe("[\n  1,\n  … (10 more chars)")
    // an astral character is never split in half
    expect(Render.cut(`${"a".repeat(9)}😀bbbb`, 10)).toBe(`${"a".repeat(9)}… (6 more chars)`)
  })

  it("aligns columns", () => {
    expect(
      Render.columns([
        ["NAME", "VERSION"],
        ["chess_pipeline", "1"]
      ])
    ).toBe("NAME            VERSION\nchess_pipeline  1")
  })
})

describe("normalizeArgv", () => {
  it("turns restore's --version into --state-version and leaves everything else alone", () => {
    expect(normalizeArgv(["node", "bin", "pipeline", "p", "restore", "--version", "3", "--yes"])).toEqual([
      "node",
      "bin",
      "pipeline",
      "p",
      "restore",
      "--state-version",
      "3",
      "--yes"
    ])
    expect(normalizeArgv(["node", "bin", "pipeline", "p", "restore", "--version=3"])).toContain("--state-version=3")
    const others = ["node", "bin", "pipeline", "p", "history", "--version"]
    expect(normalizeArgv(others)).toEqual(others)
    expect(normalizeArgv(["node", "bin", "--version"])).toEqual(["node", "bin", "--version"])
  })
  it("history shows the run and checkpoint of the loads of runs with checkpoints", () => {
    const at = new Date(Date.UTC(2026, 0, 1))
    const versions = [
      {
        version: 3,
        hash: "h3",
        loadId: "1.3",
        createdAt: at,
        engineVersion: 4,
        run: { runId: "1.1", checkpoint: 3, final: true }
      },
      {
        version: 2,
        hash: "h2",
        loadId: "1.2",
        createdAt: at,
        engineVersion: 4,
        run: { runId: "1.1", checkpoint: 2, final: false }
      },
      { version: 1, hash: "h1", loadId: "0.9", createdAt: at, engineVersion: 4 }
    ]
    const text = Render.historyText("p", versions, Option.some("h3"))
    expect(text).toContain("RUN (CHECKPOINT)")
    expect(text).toMatch(/\n3\s+h3\s+1\.3\s+\S+\s+1\.1 #3 final\s+local\n/)
    expect(text).toMatch(/\n2\s+h2\s+1\.2\s+\S+\s+1\.1 #2\s*\n/)
    expect(Render.historyJson(versions)).toEqual([
      expect.objectContaining({ run: { run_id: "1.1", checkpoint: 3, final: true } }),
      expect.objectContaining({ run: { run_id: "1.1", checkpoint: 2, final: false } }),
      expect.not.objectContaining({ run: expect.anything() })
    ])
    // runs without checkpoints: the columns as before
    expect(Render.historyText("p", [versions[2]!], Option.none())).not.toContain("RUN")
  })
})
