import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { afterAll, describe, expect, it, layer } from "@effect/vitest"
import {
  BigDecimal,
  Cause,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  FastCheck,
  Fiber,
  Layer,
  Option,
  Redacted,
  Stream
} from "effect"
import {
  copyCsvStatement,
  copyFrom,
  copyFromFile,
  formatCsvRows,
  PgCopyError,
  quoteIdent,
  transactionPgClient
} from "../src/internal/destination/PgCopy.js"
import type { Cell, Column, ColumnType } from "../src/internal/destination/TableSchema.js"

const url = process.env.PIPESTATE_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const SCHEMA = `pipestate_pgcopy_${process.pid}`
const S = quoteIdent(SCHEMA)

const col = (name: string, type: ColumnType): Column => ({ name, type, nullable: true, primaryKey: false })

const csv = (columns: ReadonlyArray<Column>, rows: ReadonlyArray<ReadonlyArray<Cell>>): string =>
  Either.getOrThrow(formatCsvRows(columns, rows))

const formatError = (columns: ReadonlyArray<Column>, rows: ReadonlyArray<ReadonlyArray<Cell>>): PgCopyError => {
  const result = formatCsvRows(columns, rows, { table: "events" })
  if (Either.isRight(result)) throw new Error(`expected a failure, got ${JSON.stringify(result.right)}`)
  return result.left
}

describe("quoteIdent", () => {
  it("quotes and doubles embedded quotes", () => {
    expect(quoteIdent("order")).toBe('"order"')
    expect(quoteIdent('x"; DROP TABLE y; --')).toBe('"x""; DROP TABLE y; --"')
    expect(quoteIdent("")).toBe('""')
  })

  it("builds the COPY statement", () => {
    expect(copyCsvStatement('we"ird', [col("id", "bigint"), col("a b", "text")], "s")).toBe(
      `COPY "s"."we""ird" ("id", "a b") FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8')`
    )
    expect(copyCsvStatement("t", [col("id", "bigint")])).toBe(
      `COPY "t" ("id") FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8')`
    )
  })
})

describe("formatCsvRows", () => {
  it("writes NULL as an empty field and the empty string quoted; short rows end in NULLs", () => {
    const columns = [col("id", "bigint"), col("a", "text"), col("b", "text")]
    expect(csv(columns, [[1n, "", null], [2n], [null, "x", "y"]])).toBe('1,"",\n2,,\n,x,y\n')
  })

  it("quotes text only when needed", () => {
    const columns = [col("t", "text")]
    const lines = csv(columns, [
      ["plain"],
      [" spaced "],
      ["a,b"],
      ['say "hi"'],
      ["two\nlines"],
      ["cr\rhere"],
      ["\\."],
      ["\\N"],
      ["emoji 🙂"]
    ])
    expect(lines).toBe('plain\n spaced \n"a,b"\n"say ""hi"""\n"two\nlines"\n"cr\rhere"\n"\\."\n"\\N"\nemoji 🙂\n')
  })

  it("writes any integer and any well-formed text as they read (ASCII, non-ASCII at any position, short and long)", () => {
    FastCheck.assert(
      FastCheck.property(
        FastCheck.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
        FastCheck.boolean(),
        (n, b) => {
          expect(csv([col("i", "bigint"), col("b", "boolean")], [[n, b]])).toBe(`${n},${b ? "t" : "f"}\n`)
        }
      ),
      { numRuns: 2000 }
    )
    FastCheck.assert(
      FastCheck.property(
        FastCheck.string({
          unit: FastCheck.oneof(FastCheck.constantFrom("a", "Z", "9", " ", "é", "ü", "→", "🙂"), FastCheck.char()),
          maxLength: 120
        }).filter((t) => t.length > 0 && !/[",\n\r\0]/.test(t) && !t.startsWith("\\")),
        (t) => {
          expect(csv([col("t", "text"), col("u", "text")], [[t, t]])).toBe(`${t},${t}\n`)
        }
      ),
      { numRuns: 2000 }
    )
  })

  it("formats every scalar type", () => {
    const columns = [
      col("i", "bigint"),
      col("d", "double"),
      col("b", "boolean"),
      col("n", "decimal"),
      col("x", "bytes"),
      col("j", "json")
    ]
    expect(
      csv(columns, [
        [
          -(2n ** 63n),
          -0,
          true,
          BigDecimal.unsafeFromString("-12.50"),
          new Uint8Array([0, 1, 255]),
          { a: 'q"', b: [1] }
        ],
        [2 ** 60, Number.NaN, false, BigDecimal.unsafeFromString("0.000000000000000000001"), new Uint8Array(), []],
        [42, Number.NEGATIVE_INFINITY, null, null, null, "s"]
      ])
    ).toBe(
      [
        '-9223372036854775808,-0,t,-12.50,\\x0001ff,"{""a"":""q\\"""",""b"":[1]}"',
        '1152921504606846976,NaN,f,0.000000000000000000001,\\x,"[]"',
        '42,-Infinity,,,,"""s"""',
        ""
      ].join("\n")
    )
  })

  it("formats timestamps as exact UTC text, including BC and five-digit years", () => {
    const at = (iso: string) => new Date(iso)
    const bc44 = new Date(0)
    bc44.setUTCFullYear(-43, 2, 15)
    bc44.setUTCHours(12, 0, 0, 123)
    const year1bc = new Date(0)
    year1bc.setUTCFullYear(0, 0, 1)
    expect(
      csv(
        [col("ts", "timestamp")],
        [
          [at("2024-02-29T23:59:59.999Z")],
          [at("2024-02-29T00:00:00.000Z")],
          [at("1969-12-31T23:59:59.001Z")],
          [new Date(Date.UTC(12345, 0, 1))],
          [bc44],
          [year1bc]
        ]
      )
    ).toBe(
      [
        "2024-02-29 23:59:59.999Z",
        "2024-02-29 00:00:00Z",
        "1969-12-31 23:59:59.001Z",
        "12345-01-01 00:00:00Z",
        "0044-03-15 12:00:00.123Z BC",
        "0001-01-01 00:00:00Z BC",
        ""
      ].join("\n")
    )
  })

  it("agrees with toISOString for any date in years 1 to 9999", () => {
    const columns = [col("ts", "timestamp")]
    FastCheck.assert(
      FastCheck.property(
        FastCheck.array(
          FastCheck.date({ min: new Date("0001-01-01T00:00:00.000Z"), max: new Date("9999-12-31T23:59:59.999Z") }),
          { maxLength: 20 }
        ),
        (dates) => {
          const expected = dates.map((d) => `${d.toISOString().replace("T", " ").replace(".000Z", "Z")}\n`).join("")
          expect(
            csv(
              columns,
              dates.map((d) => [d])
            )
          ).toBe(expected)
        }
      ),
      { numRuns: 2000 }
    )
  })

  it("formats any Date in range as PostgreSQL reads it (BC years, five- and six-digit years)", () => {
    const columns = [col("ts", "timestamp")]
    const pad = (n: number, width: number) => String(n).padStart(width, "0")
    const reference = (d: Date): string => {
      const year = d.getUTCFullYear()
      const ms = d.getUTCMilliseconds()
      return (
        `${pad(year > 0 ? year : 1 - year, 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)} ` +
        `${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}` +
        `${ms === 0 ? "" : `.${pad(ms, 3)}`}Z${year > 0 ? "" : " BC"}\n`
      )
    }
    FastCheck.assert(
      FastCheck.property(
        FastCheck.array(
          FastCheck.integer({ min: -8.64e15, max: 8.64e15 }).map((ms) => new Date(ms)),
          {
            maxLength: 20
          }
        ),
        (dates) => {
          expect(
            csv(
              columns,
              dates.map((d) => [d])
            )
          ).toBe(dates.map(reference).join(""))
        }
      ),
      { numRuns: 2000 }
    )
  })

  it("writes json exactly as JSON.stringify would, quote-doubled", () => {
    const columns = [col("j", "json")]
    const expected = (value: unknown): string | "invalid" => {
      // A null cell is SQL NULL, not JSON null.
      if (value === null || value === undefined) return "\n"
      let json: string | undefined
      try {
        json = JSON.stringify(value)
      } catch {
        return "invalid"
      }
      if (json === undefined || /(^|[^\\])(\\\\)*\\u0000/.test(json)) return "invalid"
      return `"${json.replaceAll('"', '""')}"\n`
    }
    const actual = (value: unknown): string | "invalid" =>
      Either.match(formatCsvRows(columns, [[value as Cell]]), { onLeft: () => "invalid", onRight: (text) => text })
    FastCheck.assert(
      FastCheck.property(
        FastCheck.oneof(
          FastCheck.jsonValue(),
          FastCheck.anything({
            withBoxedValues: true,
            withDate: true,
            withMap: true,
            withSet: true,
            withNullPrototype: true,
            withObjectString: true,
            withSparseArray: true,
            withTypedArray: true,
            withBigInt: true,
            withUnicodeString: true
          })
        ),
        (value) => {
          expect(actual(value)).toBe(expected(value))
        }
      ),
      { numRuns: 3000 }
    )
    const cyclic: { self?: unknown; list: Array<unknown> } = { list: [] }
    cyclic.self = cyclic
    expect(actual(cyclic)).toBe("invalid")
    const deep = Array.from({ length: 100 }).reduce<unknown>((inner) => ({ a: [inner, undefined, () => 1] }), "x")
    expect(actual(deep)).toBe(expected(deep))
    const withToJson = { a: 1, toJSON: () => ({ replaced: 'y"' }) }
    expect(actual({ nested: withToJson, when: new Date(0) })).toBe(expected({ nested: withToJson, when: new Date(0) }))
    expect(actual({ lone: "\ud800", pair: "🙂", ctl: "\u0001\t" })).toBe(
      expected({ lone: "\ud800", pair: "🙂", ctl: "\u0001\t" })
    )
  })

  it("rejects NUL in text and json, naming table, column and row", () => {
    const error = formatError(
      [col("id", "bigint"), col("note", "text")],
      [
        [1n, "ok"],
        [2n, "a\u0000b"]
      ]
    )
    expect(error).toBeInstanceOf(PgCopyError)
    expect(error.table).toBe("events")
    expect(error.column).toBe("note")
    expect(error.row).toBe(1)
    expect(error.message).toContain('table "events", column "note", row 1')
    expect(error.message).toContain("NUL")
    expect(formatError([col("j", "json")], [[{ k: "x\u0000" }]]).reason).toContain("NUL")
    expect(formatError([col("j", "json")], [[{ "k\u0000": 1 }]]).reason).toContain("NUL")
    // A literal backslash followed by "u0000" is ordinary text.
    expect(csv([col("j", "json")], [[{ k: "\\u0000" }]])).toBe('"{""k"":""\\\\u0000""}"\n')
  })

  it("rejects values of the wrong type and impossible values", () => {
    expect(formatError([col("i", "bigint")], [[1.5]]).reason).toContain("bigint column takes")
    expect(formatError([col("i", "bigint")], [["1"]]).reason).toContain('the string "1"')
    expect(formatError([col("t", "text")], [[1]]).reason).toContain("the number 1")
    expect(formatError([col("d", "double")], [[1n]]).reason).toContain("double column")
    expect(formatError([col("b", "boolean")], [["t"]]).reason).toContain("boolean column")
    expect(formatError([col("ts", "timestamp")], [[new Date(Number.NaN)]]).reason).toContain("invalid")
    expect(formatError([col("ts", "timestamp")], [["2024-01-01"]]).reason).toContain("a Date")
    expect(formatError([col("n", "decimal")], [[1.5]]).reason).toContain("BigDecimal")
    expect(formatError([col("x", "bytes")], [["00"]]).reason).toContain("Uint8Array")
    expect(formatError([col("j", "json")], [[{ big: 1n }]]).reason).toContain("JSON")
    expect(formatError([col("t", "text")], [["a", "b"]]).reason).toContain("2 cells")
    expect(formatError([], [[]]).reason).toContain("no columns")
  })
})

// One connection: a test that checks the backend pid before and after proves the connection that ran
// a failed or aborted COPY went back to the pool usable instead of being thrown away.
const PgLive = PgClient.layer({ url: Redacted.make(url), maxConnections: 1, idleTimeout: Duration.minutes(30) })

const SchemaLive = Layer.scopedDiscard(
  Effect.acquireRelease(
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql.unsafe(`DROP SCHEMA IF EXISTS ${S} CASCADE; CREATE SCHEMA ${S}`)
    ).pipe(Effect.orDie),
    () =>
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP SCHEMA IF EXISTS ${S} CASCADE`)).pipe(Effect.orDie)
  )
).pipe(Layer.provideMerge(PgLive))

const backendPid = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.map(sql<{ readonly pid: number }>`SELECT pg_backend_pid() AS pid`, (rows) => rows[0]!.pid)
)

const countRows = (table: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql.unsafe<{ readonly n: string }>(`SELECT count(*)::text AS n FROM ${S}.${quoteIdent(table)}`),
      (rows) => Number(rows[0]!.n)
    )
  )

const simpleColumns = [col("id", "bigint"), col("label", "text")]

const createSimple = (table: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe(`CREATE TABLE ${S}.${quoteIdent(table)} (id bigint NOT NULL, label text)`)
  )

const simpleCsv = (from: number, count: number): string =>
  csv(
    simpleColumns,
    Array.from({ length: count }, (_, i) => [BigInt(from + i), `row ${from + i}, "quoted"`])
  )

/** Copies into `table` on the current transaction's connection. */
const copyInto = <E, R>(table: string, chunks: Stream.Stream<string | Uint8Array, E, R>) =>
  Effect.flatMap(transactionPgClient, (client) =>
    copyFrom(client, copyCsvStatement(table, simpleColumns, SCHEMA), chunks, { table })
  )

const withTransaction = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql.withTransaction(effect))

// Without the test services, it.effect runs on the real clock: timeouts around database I/O must pass.
layer(SchemaLive, { excludeTestServices: true })("PgCopy against PostgreSQL", (it) => {
  it.effect("transactionPgClient fails outside a transaction and is the transaction's connection inside", () =>
    Effect.gen(function* () {
      const outside = yield* Effect.flip(transactionPgClient)
      expect(outside).toBeInstanceOf(PgCopyError)
      expect(outside.message).toContain("sql.withTransaction")

      const sql = yield* SqlClient.SqlClient
      yield* createSimple("visible")
      const seen = yield* sql.withTransaction(
        Effect.gen(function* () {
          const copied = yield* copyInto("visible", Stream.make(simpleCsv(0, 3)))
          // Visible inside the transaction before commit: the COPY ran on the transaction's connection.
          const inside = yield* countRows("visible")
          return { copied, inside }
        })
      )
      expect(seen).toEqual({ copied: 3, inside: 3 })
      expect(yield* countRows("visible")).toBe(3)
    })
  )

  it.effect("round-trips every column type with edge values", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(
        `CREATE TABLE ${S}.all_types (k bigint PRIMARY KEY, i bigint, t text, d double precision, b boolean,
         ts timestamptz, n numeric, x bytea, j jsonb)`
      )
      const columns = [
        col("k", "bigint"),
        col("i", "bigint"),
        col("t", "text"),
        col("d", "double"),
        col("b", "boolean"),
        col("ts", "timestamp"),
        col("n", "decimal"),
        col("x", "bytes"),
        col("j", "json")
      ]
      const year1bc = new Date(0)
      year1bc.setUTCFullYear(0, 0, 1)
      const year50 = new Date(0)
      year50.setUTCFullYear(50, 5, 15)
      year50.setUTCHours(1, 2, 3, 4)
      const ints: ReadonlyArray<Cell> = [
        null,
        2n ** 63n - 1n,
        -(2n ** 63n),
        2n ** 53n + 1n,
        -(2n ** 53n) - 1n,
        0n,
        42,
        -9007199254740991
      ]
      const texts: ReadonlyArray<Cell> = [
        "",
        null,
        'he said "hi"',
        "a,b,,c",
        "line1\nline2",
        "crlf\r\nend",
        "  leading and trailing  ",
        "\\.",
        "a\n\\.\nb",
        "\\N",
        "NULL",
        "ñ 中文 ﷽ Ω",
        "emoji 🙂👍🏽🇫🇷",
        "tab\there",
        "back\\slash",
        '"'
      ]
      const doubles: ReadonlyArray<Cell> = [
        0,
        -0,
        1e-300,
        5e-324,
        Number.MAX_VALUE,
        -1.5,
        0.1 + 0.2,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        Number.NEGATIVE_INFINITY,
        null,
        123456789.123
      ]
      const bools: ReadonlyArray<Cell> = [true, false, null]
      const dates: ReadonlyArray<Cell> = [
        new Date("1969-07-20T20:17:40.123Z"),
        new Date(-1),
        new Date(0),
        new Date("1900-01-01T00:00:00.000Z"),
        year1bc,
        year50,
        new Date(Date.UTC(12345, 11, 31, 23, 59, 59, 999)),
        new Date("2024-02-29T12:34:56.789Z"),
        null
      ]
      const decimals: ReadonlyArray<Cell> = [
        BigDecimal.unsafeFromString("123456789012345678901234567890.123456789012345678901234567890"),
        BigDecimal.unsafeFromString("-0.000000000000000000000000000000000000001"),
        BigDecimal.unsafeFromString("1.50"),
        BigDecimal.make(1n, -40),
        BigDecimal.unsafeFromString("0"),
        null
      ]
      const bytes: ReadonlyArray<Cell> = [
        new Uint8Array([0]),
        new Uint8Array(),
        new Uint8Array([0, 1, 2, 255, 0, 44, 34, 10]),
        new Uint8Array(randomBytes(300)),
        // A view into a larger buffer: only its own bytes may be written.
        new Uint8Array([9, 9, 1, 2, 9]).subarray(2, 4),
        null
      ]
      const jsons: ReadonlyArray<Cell> = [
        {
          quote: 'he said "hi"',
          newline: "a\nb\r\nc",
          unicode: "ünïcødé 🙂 中文",
          nested: [1, 2.5, null, true, { deeper: [] }],
          comma: "a,b",
          backslash: "c:\\dir\\",
          escapedLookalike: "\\u0000 is just text"
        },
        [],
        {},
        [1, "two", { three: 3 }],
        null
      ]
      const lists = [ints, texts, doubles, bools, dates, decimals, bytes, jsons]
      const count = Math.max(...lists.map((list) => list.length))
      const rows: Array<ReadonlyArray<Cell>> = Array.from({ length: count }, (_, r) => [
        BigInt(r),
        ...lists.map((list) => list[r % list.length] ?? null)
      ])
      rows.push([BigInt(count)]) // a short row: everything after k is NULL

      const text = csv(columns, rows)
      // Split across chunk boundaries anywhere, including inside quoted fields and multi-byte characters.
      const pieces = Array.from({ length: Math.ceil(text.length / 7) }, (_, i) => text.slice(i * 7, i * 7 + 7))
      const copied = yield* withTransaction(
        Effect.flatMap(transactionPgClient, (client) =>
          copyFrom(client, copyCsvStatement("all_types", columns, SCHEMA), Stream.fromIterable(pieces))
        )
      )
      expect(copied).toBe(rows.length)

      const back = yield* sql.unsafe<{
        readonly k: string
        readonly i: string | null
        readonly t: string | null
        readonly d: number | null
        readonly b: boolean | null
        readonly ts_ms: string | null
        readonly n: string | null
        readonly x: Buffer | null
        readonly j: unknown
      }>(
        `SELECT k::text AS k, i::text AS i, t, d, b, (extract(epoch FROM ts) * 1000)::bigint::text AS ts_ms,
                n::text AS n, x, j
         FROM ${S}.all_types ORDER BY all_types.k`
      )
      expect(back.length).toBe(rows.length)
      back.forEach((got, r) => {
        const row = rows[r]!
        const cell = (c: number): Cell => row[c] ?? null
        expect(got.k).toBe(String(r))
        const i = cell(1)
        expect(got.i).toBe(i === null ? null : typeof i === "number" ? String(i) : (i as bigint).toString())
        expect(got.t).toBe(cell(2))
        const d = cell(3)
        if (d === null) expect(got.d).toBeNull()
        else expect(Object.is(got.d, d)).toBe(true)
        expect(got.b).toBe(cell(4))
        const ts = cell(5)
        expect(got.ts_ms).toBe(ts === null ? null : String((ts as Date).getTime()))
        const n = cell(6)
        if (n === null) expect(got.n).toBeNull()
        else expect(BigDecimal.equals(BigDecimal.unsafeFromString(got.n!), n as BigDecimal.BigDecimal)).toBe(true)
        const x = cell(7)
        expect(got.x === null ? null : Array.from(got.x)).toEqual(x === null ? null : Array.from(x as Uint8Array))
        expect(got.j).toEqual(cell(8))
      })
    })
  )

  it.effect("keeps `\\.` alone on a line as data in a one-column table", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`CREATE TABLE ${S}.one_col (t text)`)
      const columns = [col("t", "text")]
      const values: ReadonlyArray<string | null> = ["\\.", "after", "\\.\n", "x\n\\.", "", null]
      const copied = yield* withTransaction(
        Effect.flatMap(transactionPgClient, (client) =>
          copyFrom(
            client,
            copyCsvStatement("one_col", columns, SCHEMA),
            Stream.make(
              csv(
                columns,
                values.map((v) => [v])
              )
            )
          )
        )
      )
      expect(copied).toBe(values.length)
      const back = yield* sql.unsafe<{ readonly t: string | null }>(`SELECT t FROM ${S}.one_col`)
      // A NULL alone is an empty line, which COPY reads as NULL, not as the end of data.
      expect(back.map((row) => row.t).sort()).toEqual([...values].sort())
    })
  )

  it.effect("copies into a table whose name is an injection attempt", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const evil = 'x"; DROP TABLE y; --'
      yield* sql.unsafe(`CREATE TABLE ${S}.y (id bigint)`)
      yield* sql.unsafe(`CREATE TABLE ${S}.${quoteIdent(evil)} (id bigint NOT NULL, label text)`)
      const copied = yield* withTransaction(copyInto(evil, Stream.make(simpleCsv(0, 2))))
      expect(copied).toBe(2)
      expect(yield* countRows(evil)).toBe(2)
      expect(yield* countRows("y")).toBe(0)
    })
  )

  it.effect("a failure after the COPY inside the transaction leaves 0 rows", () =>
    Effect.gen(function* () {
      yield* createSimple("after_fail")
      const pid = yield* backendPid
      const exit = yield* Effect.exit(
        withTransaction(
          Effect.zipRight(copyInto("after_fail", Stream.make(simpleCsv(0, 1000))), Effect.fail("boom" as const))
        )
      )
      expect(exit).toStrictEqual(Exit.fail("boom"))
      expect(yield* countRows("after_fail")).toBe(0)
      expect(yield* backendPid).toBe(pid)
    })
  )

  it.effect("a bad row mid-COPY fails with the server's reason, leaves 0 rows, and the connection works", () =>
    Effect.gen(function* () {
      yield* createSimple("bad_row")
      const pid = yield* backendPid
      // Many chunks after the bad one, so the error arrives while writes are still in flight.
      const chunks = Stream.range(0, 299).pipe(
        Stream.map((i) =>
          i === 40 ? `${simpleCsv(i * 1000, 500)}not-a-number,x\n${simpleCsv(0, 500)}` : simpleCsv(i * 1000, 1000)
        )
      )
      const error = yield* Effect.flip(withTransaction(copyInto("bad_row", chunks)))
      if (!(error instanceof PgCopyError)) throw new Error(`expected a PgCopyError, got ${String(error)}`)
      expect(error.message).toContain("invalid input syntax for type bigint")
      expect(error.message).toContain("line 40501")
      expect(error.table).toBe("bad_row")
      expect(yield* countRows("bad_row")).toBe(0)
      expect(yield* backendPid).toBe(pid)
      // And it can COPY again.
      expect(yield* withTransaction(copyInto("bad_row", Stream.make(simpleCsv(0, 10))))).toBe(10)
    })
  )

  it.effect("interruption by Effect.timeout mid-COPY leaves 0 rows and the connection works", () =>
    Effect.gen(function* () {
      yield* createSimple("timeout")
      const pid = yield* backendPid
      const neverEnds = Stream.concat(Stream.make(simpleCsv(0, 5000)), Stream.never)
      const exit = yield* Effect.exit(
        withTransaction(copyInto("timeout", neverEnds).pipe(Effect.timeout(Duration.millis(300))))
      )
      expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause).pipe(Option.isSome)).toBe(true)
      expect(yield* countRows("timeout")).toBe(0)
      expect(yield* backendPid).toBe(pid)
      expect(yield* withTransaction(copyInto("timeout", Stream.make(simpleCsv(0, 10))))).toBe(10)
    })
  )

  it.effect("Fiber.interrupt while waiting on backpressure leaves 0 rows and the connection works", () =>
    Effect.gen(function* () {
      yield* createSimple("interrupted")
      const pid = yield* backendPid
      const started = yield* Deferred.make<void>()
      let sent = 0
      const chunk = simpleCsv(0, 2000)
      const endless = Stream.repeatValue(chunk).pipe(
        Stream.tap(() => {
          sent++
          return sent === 50 ? Deferred.succeed(started, undefined) : Effect.void
        })
      )
      const fiber = yield* Effect.fork(withTransaction(copyInto("interrupted", endless)))
      yield* Deferred.await(started)
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(sent).toBeGreaterThanOrEqual(50)
      expect(yield* countRows("interrupted")).toBe(0)
      expect(yield* backendPid).toBe(pid)
      expect(yield* withTransaction(copyInto("interrupted", Stream.make(simpleCsv(0, 10))))).toBe(10)
    })
  )

  it.effect("a failing source stream aborts the COPY with its own error", () =>
    Effect.gen(function* () {
      yield* createSimple("source_fail")
      const pid = yield* backendPid
      const failing = Stream.concat(Stream.make(simpleCsv(0, 1000)), Stream.fail("source broke" as const))
      const error = yield* Effect.flip(withTransaction(copyInto("source_fail", failing)))
      expect(error).toBe("source broke")
      expect(yield* countRows("source_fail")).toBe(0)
      expect(yield* backendPid).toBe(pid)
    })
  )

  it.effect("takes Uint8Array chunks and an empty stream", () =>
    Effect.gen(function* () {
      yield* createSimple("bytes_chunks")
      const encoded = new TextEncoder().encode(simpleCsv(0, 100))
      // Cut inside a multi-byte character too: the server sees one byte stream.
      const pieces = [encoded.subarray(0, 333), encoded.subarray(333, 334), encoded.subarray(334)]
      expect(yield* withTransaction(copyInto("bytes_chunks", Stream.fromIterable(pieces)))).toBe(100)
      expect(yield* withTransaction(copyInto("bytes_chunks", Stream.empty))).toBe(0)
      expect(yield* countRows("bytes_chunks")).toBe(100)
    })
  )

  it.effect("a COPY the server refuses fails with its reason and the connection works", () =>
    Effect.gen(function* () {
      const pid = yield* backendPid
      const error = yield* Effect.flip(withTransaction(copyInto("does_not_exist", Stream.make(simpleCsv(0, 1)))))
      expect(error).toBeInstanceOf(PgCopyError)
      expect(error.message).toContain("does not exist")
      expect(yield* backendPid).toBe(pid)
    })
  )

  describe("copyFromFile", () => {
    const dir = mkdtempSync(join(tmpdir(), "pipestate-pgcopy-"))
    afterAll(() => rmSync(dir, { recursive: true, force: true }))
    const fileCopy = (table: string, path: string) =>
      Effect.flatMap(transactionPgClient, (client) =>
        copyFromFile(client, copyCsvStatement(table, simpleColumns, SCHEMA), path, { table })
      )

    it.effect("copies a spool file", () =>
      Effect.gen(function* () {
        yield* createSimple("from_file")
        const path = join(dir, "rows.csv")
        writeFileSync(path, simpleCsv(0, 12_345))
        expect(yield* withTransaction(fileCopy("from_file", path))).toBe(12_345)
        expect(yield* countRows("from_file")).toBe(12_345)
      })
    )

    it.effect("a missing file fails naming it, leaves 0 rows, and the connection works", () =>
      Effect.gen(function* () {
        yield* createSimple("missing_file")
        const pid = yield* backendPid
        const path = join(dir, "nope.csv")
        const error = yield* Effect.flip(withTransaction(fileCopy("missing_file", path)))
        expect(error).toBeInstanceOf(PgCopyError)
        expect(error.message).toContain(path)
        expect(error.message).toContain("ENOENT")
        expect(yield* countRows("missing_file")).toBe(0)
        expect(yield* backendPid).toBe(pid)
      })
    )

    it.effect("a bad row in the file leaves 0 rows and the connection works", () =>
      Effect.gen(function* () {
        yield* createSimple("bad_file")
        const pid = yield* backendPid
        const path = join(dir, "bad.csv")
        writeFileSync(path, `${simpleCsv(0, 100_000)}oops,x\n${simpleCsv(0, 100_000)}`)
        const error = yield* Effect.flip(withTransaction(fileCopy("bad_file", path)))
        expect(error.message).toContain("invalid input syntax for type bigint")
        expect(yield* countRows("bad_file")).toBe(0)
        expect(yield* backendPid).toBe(pid)
      })
    )

    it.effect("interruption mid-file leaves 0 rows and the connection works", () =>
      Effect.gen(function* () {
        yield* createSimple("file_interrupted")
        const pid = yield* backendPid
        const path = join(dir, "big.csv")
        writeFileSync(path, simpleCsv(0, 1_000_000))
        const fiber = yield* Effect.fork(withTransaction(fileCopy("file_interrupted", path)))
        yield* Effect.sleep(Duration.millis(100))
        yield* Fiber.interrupt(fiber)
        expect(yield* countRows("file_interrupted")).toBe(0)
        expect(yield* backendPid).toBe(pid)
        expect(yield* withTransaction(fileCopy("file_interrupted", join(dir, "rows.csv")))).toBe(12_345)
      })
    )
  })
})
