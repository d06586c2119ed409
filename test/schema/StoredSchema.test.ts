import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { TableNormalizer } from "../../src/internal/pipeline/Normalize.js"
import * as StoredSchema from "../../src/internal/schema/StoredSchema.js"
import * as VersionRow from "../../src/internal/schema/VersionRow.js"
import postgresVectors from "../fixtures/dlt-vectors/postgres-state-table.json" with { type: "json" }
import sqliteVectors from "../fixtures/dlt-vectors/sqlite-state-table.json" with { type: "json" }

// _dlt_version rows that dlt 1.26 wrote (README in test/fixtures/dlt-vectors)
const sqliteRow = sqliteVectors.sqlite.tables._dlt_version.rows[0]!
const sqliteText = sqliteRow.schema.value
const pgRow = postgresVectors.postgres.tables._dlt_version.row
const pgText = pgRow.schema.text

const parse = (text: string) => Either.getOrThrow(StoredSchema.fromText(text))

describe("StoredSchema: dlt's documents", () => {
  it("computes dlt's version hash of the schemas dlt stored", () => {
    for (const text of [sqliteText, pgText]) {
      const doc = parse(text)
      expect(StoredSchema.hash(doc)).toBe(doc.version_hash)
      expect(StoredSchema.isModified(doc)).toBe(false)
    }
  })

  it("reads dlt's _dlt_version rows (SQLite values, PostgreSQL text) and writes the document back byte for byte", () => {
    const fromSqlite = Either.getOrThrow(
      VersionRow.fromVersionRow({
        version: sqliteRow.version.value,
        engine_version: sqliteRow.engine_version.value,
        inserted_at: sqliteRow.inserted_at.value,
        schema_name: sqliteRow.schema_name.value,
        version_hash: sqliteRow.version_hash.value,
        schema: sqliteText
      })
    )
    expect(fromSqlite.name).toBe("vec_sqlite")
    expect(fromSqlite.version).toBe(2)
    expect(StoredSchema.toText(fromSqlite)).toBe(sqliteText)
    const fromPg = Either.getOrThrow(
      VersionRow.fromVersionRow({
        version: pgRow.version.text,
        engine_version: pgRow.engine_version.text,
        inserted_at: pgRow.inserted_at.text,
        schema_name: pgRow.schema_name.text,
        version_hash: pgRow.version_hash.text,
        schema: pgText
      })
    )
    expect(StoredSchema.toText(fromPg)).toBe(pgText)
    expect(StoredSchema.resources(fromPg)).toEqual(["items"])
    expect(StoredSchema.tablesOf(fromPg, "items")).toEqual(["items"])
  })

  it("refuses a row that disagrees with its own document", () => {
    const row = {
      version: 2,
      schema_name: "vec_sqlite",
      version_hash: sqliteRow.version_hash.value,
      schema: sqliteText
    }
    expect(Either.isRight(VersionRow.fromVersionRow(row))).toBe(true)
    const bad = [
      { ...row, version: 3 },
      { ...row, schema_name: "other" },
      { ...row, version_hash: "x" },
      { ...row, schema: "{not json" },
      { ...row, version: "2.5" }
    ]
    for (const r of bad) {
      const result = VersionRow.fromVersionRow(r)
      expect(Either.isLeft(result) && result.left._tag === "InvalidStoredSchema").toBe(true)
    }
  })

  it("refuses documents that are not dlt's structure or of another engine, and upgrades engine 10", () => {
    const doc = JSON.parse(sqliteText)
    const refused = (value: unknown) => Either.isLeft(StoredSchema.fromJson(value))
    expect(refused({ ...doc, engine_version: 12 })).toBe(true)
    expect(refused({ ...doc, engine_version: 9 })).toBe(true)
    expect(refused({ ...doc, tables: { t: { name: "t", columns: { a: { name: "a", data_type: "varchar" } } } } })).toBe(
      true
    )
    expect(refused({ ...doc, tables: [] })).toBe(true)
    expect(refused(null)).toBe(true)
    const upgraded = Either.getOrThrow(StoredSchema.fromJson({ ...doc, engine_version: 10 }))
    expect(upgraded.engine_version).toBe(11)
    expect(upgraded.normalizers?.use_break_path_on_normalize).toBe(false)
    // the upgrade is a content change: the next bump records it, as dlt's would
    expect(StoredSchema.bump(upgraded).version).toBe(3)
  })

  it("keeps keys it does not know (dlt's other hints, x- extensions)", () => {
    const doc = JSON.parse(sqliteText)
    doc.tables.items.columns.name["x-custom"] = { a: 1 }
    doc.tables.items.table_format = "iceberg"
    doc.description = "mine"
    const read = Either.getOrThrow(StoredSchema.fromJson(doc))
    expect(StoredSchema.toText(read)).toBe(JSON.stringify(doc))
  })
})

describe("StoredSchema: what pipestate writes", () => {
  it("builds the document dlt wrote for the same load (items: id bigint primary key, name text)", () => {
    const items = new TableNormalizer({ name: "items", writeDisposition: "append", primaryKey: ["id"] })
    Either.getOrThrow(items.normalize([{ id: 1, name: "a" }], "1795969817.9293659", () => "x"))
    const ours = StoredSchema.withPipelineStateTable(
      StoredSchema.mergeTables(StoredSchema.empty("vec_sqlite"), [items.storedTable()])
    )
    const dlts = parse(sqliteText)
    // same tables, columns, hints and key order
    expect(JSON.stringify(ours.tables)).toBe(JSON.stringify(dlts.tables))
    expect(ours.normalizers).toEqual(dlts.normalizers)
    expect(ours.engine_version).toBe(dlts.engine_version)
    // dlt also declares the iso_timestamp detection, which pipestate does not perform
    const { detections, ...dltSettings } = dlts.settings as Record<string, unknown>
    expect(detections).toEqual(["iso_timestamp"])
    expect(ours.settings).toEqual(dltSettings)
    // with dlt's settings, the very same content hashes to dlt's hash
    expect(StoredSchema.hash({ ...StoredSchema.bump(ours), settings: dlts.settings })).toBe(dlts.version_hash)
    const row = VersionRow.toVersionRow(StoredSchema.bump(ours), new Date(0))
    expect(Object.keys(row)).toEqual([...VersionRow.COLUMNS])
    expect(row).toMatchObject({ version: 2, engine_version: 11, schema_name: "vec_sqlite" })
    expect(Either.getOrThrow(VersionRow.fromVersionRow(row))).toEqual(StoredSchema.bump(ours))
  })

  it("starts at version 1 with dlt's system tables, and bumps only when the content changes", () => {
    const s = StoredSchema.empty("chess")
    expect(s.version).toBe(1)
    expect(s.previous_hashes).toEqual([])
    expect(s.version_hash).toBe(StoredSchema.hash(s))
    expect(Object.keys(s.tables)).toEqual(["_dlt_version", "_dlt_loads"])
    expect(StoredSchema.bump(s)).toBe(s)
    const t: StoredSchema.Table = {
      name: "games",
      columns: { id: { name: "id", data_type: "bigint", nullable: true } },
      write_disposition: "append",
      resource: "games"
    }
    const s2 = StoredSchema.bump(StoredSchema.mergeTables(s, [t]))
    expect(s2.version).toBe(2)
    expect(s2.previous_hashes).toEqual([s.version_hash])
    // merging the same table again changes nothing
    expect(StoredSchema.mergeTables(s2, [t])).toBe(s2)
    // a new column: version 3, history newest first
    const s3 = StoredSchema.bump(
      StoredSchema.mergeTables(s2, [{ ...t, columns: { ...t.columns, n: { name: "n", data_type: "text" } } }])
    )
    expect(s3.version).toBe(3)
    expect(s3.previous_hashes).toEqual([s2.version_hash, s.version_hash])
    expect(Object.keys(s3.tables.games!.columns)).toEqual(["id", "n"])
  })

  it("keeps at most 10 previous hashes and never records one twice", () => {
    let s = StoredSchema.empty("s")
    for (let i = 0; i < 14; i++) {
      s = StoredSchema.bump(
        StoredSchema.mergeTables(s, [{ name: `t${i}`, columns: {}, write_disposition: "append", resource: `t${i}` }])
      )
    }
    expect(s.version).toBe(15)
    expect(s.previous_hashes).toHaveLength(10)
    expect(new Set(s.previous_hashes).size).toBe(10)
    // going back to an earlier content does not record that hash again
    const back = { ...s, version_hash: s.previous_hashes[0]! }
    expect(StoredSchema.bump(back).previous_hashes).toEqual(s.previous_hashes)
  })

  it("hashes column order (dlt's extra pass) but not key order", () => {
    const base = StoredSchema.empty("s")
    const a: StoredSchema.Table = {
      name: "t",
      columns: { x: { name: "x", data_type: "text" }, y: { name: "y", data_type: "bigint" } },
      resource: "t"
    }
    const b: StoredSchema.Table = {
      resource: "t",
      columns: { y: { data_type: "bigint", name: "y" }, x: { name: "x", data_type: "text" } },
      name: "t"
    }
    const c: StoredSchema.Table = {
      name: "t",
      resource: "t",
      columns: { x: { data_type: "text", name: "x" }, y: { name: "y", data_type: "bigint" } }
    }
    const h = (t: StoredSchema.Table) => StoredSchema.hash(StoredSchema.mergeTables(base, [t]))
    expect(h(a)).not.toBe(h(b))
    expect(h(a)).toBe(h(c))
  })

  it("sorts keys by code point, as Python does", () => {
    // U+FF21 sorts before U+1F600 by code point, after it by UTF-16 unit; the expected hash was
    // computed by dlt's algorithm in Python (json.dumps sort_keys + sha3_256 + table/column pass)
    const doc = StoredSchema.mergeTables(StoredSchema.empty("s"), [
      {
        name: "t",
        resource: "t",
        columns: { "\u{1d7ce}a": { name: "\u{1d7ce}a", data_type: "text" } },
        "x-\u{1f600}": 1,
        "x-\uff21": 2,
        "x-a": 3
      }
    ])
    expect(StoredSchema.hash(doc)).toBe("AeSK+oVc9jFQZul8Oivy7s53KJV0UJgzjJ8v8d3WhYY=")
    expect(StoredSchema.empty("s").version_hash).toBe("0bDEhXkHchwBlihL4DJG5odmEqbghAdp8n4B3xLxCg0=")
  })
})

describe("StoredSchema: resources and tables", () => {
  // a dlt document with a nested table (players__games has a parent, no resource)
  const doc = StoredSchema.mergeTables(StoredSchema.empty("chess"), [
    { name: "players", columns: {}, write_disposition: "append", resource: "players_profiles" },
    { name: "players__games", parent: "players", columns: {} },
    { name: "archives", columns: {}, write_disposition: "replace" },
    { name: "audit", columns: {}, write_disposition: "append", resource: "audit" }
  ])

  it("finds every resource with tables, including those that never stored state", () => {
    expect(StoredSchema.resources(doc)).toEqual(["players_profiles", "archives", "audit"])
    expect(StoredSchema.tablesOf(doc, "players_profiles")).toEqual(["players", "players__games"])
    expect(StoredSchema.tablesOf(doc, "archives")).toEqual(["archives"])
    expect(StoredSchema.tablesOf(doc, "nope")).toEqual([])
  })

  it("drops tables with their nested tables, never dlt's", () => {
    const dropped = StoredSchema.dropTables(doc, ["players", "_dlt_loads", "missing"])
    expect(Object.keys(dropped.tables)).toEqual(["_dlt_version", "_dlt_loads", "archives", "audit"])
    expect(StoredSchema.dropTables(doc, ["missing"])).toBe(doc)
    const stored = StoredSchema.bump(doc)
    expect(StoredSchema.bump(StoredSchema.dropTables(stored, ["archives"])).version).toBe(stored.version + 1)
  })
})

describe("StoredSchema.toTableSchema", () => {
  it("gives destinations dlt's system tables with their NOT NULL columns", () => {
    const version = StoredSchema.toTableSchema(StoredSchema.versionTable)
    expect(version.columns.map((c) => `${c.name}:${c.type}:${c.nullable ? "null" : "not null"}`)).toEqual([
      "version:bigint:not null",
      "engine_version:bigint:not null",
      "inserted_at:timestamp:not null",
      "schema_name:text:not null",
      "version_hash:text:not null",
      "schema:text:not null"
    ])
    const loads = StoredSchema.toTableSchema(StoredSchema.loadsTable)
    expect(loads.columns.filter((c) => c.nullable).map((c) => c.name)).toEqual(["schema_name", "schema_version_hash"])
  })

  it("keeps a stored data table's keys and nullability, and maps dlt types to pipestate's", () => {
    const table = StoredSchema.toTableSchema({
      name: "users",
      resource: "users",
      write_disposition: "merge",
      columns: {
        id: { name: "id", nullable: false, primary_key: true, data_type: "bigint" },
        ok: { name: "ok", data_type: "bool", nullable: true },
        raw: { name: "raw", data_type: "binary" },
        day: { name: "day", data_type: "date" },
        pending: { name: "pending", nullable: true }
      }
    })
    expect(table.writeDisposition).toBe("merge")
    expect(table.primaryKey).toEqual(["id"])
    expect(table.columns.map((c) => `${c.name}:${c.type}:${c.nullable}`)).toEqual([
      "id:bigint:false",
      "ok:boolean:true",
      "raw:bytes:true",
      "day:text:true",
      "pending:text:true"
    ])
  })
})
