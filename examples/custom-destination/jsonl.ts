/**
 * A destination written outside the library: JSON-lines files, one per table, plus one state file
 * per pipeline. It implements the `Destination` service (`DestinationShape`) and is provided in
 * place of `Destination.sqlite()`, which is the documented extension point: the pipeline restores
 * its state, commits, and detects concurrent runs through it like through the built-in ones.
 *
 * A dataset on disk:
 *
 * ```
 * <directory>/<dataset>/
 *   manifest.json                      the committed snapshot: which file is current for what
 *   tables/<table>.<load id>.jsonl     one current file per table, one JSON object a line
 *   state/<pipeline>.<load id>.json    the pipeline's newest state rows, newest first
 *   .lock                              exists while a commit runs
 * ```
 *
 * Why a manifest: the rows and the state of a load must become visible TOGETHER. A commit writes
 * new files for every table it touches and for the state (each a temp file renamed into place),
 * then replaces `manifest.json` the same way. That last rename is the commit point: readers see
 * the old snapshot until it happens and the new rows with the new state after it. A crash before
 * it leaves files nothing refers to, which the next commit removes.
 *
 * Every commit rewrites the files of the tables it touches, which is fine for an example and for
 * small tables; a destination for big ones would append segment files listed in the manifest.
 */
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import { Error as PlatformError, FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { BigDecimal, Effect, Layer, Option, ParseResult, Schedule, Schema } from "effect"
import { Destination } from "../../src/index.js"

const NAME = "jsonl"
const MANIFEST = "manifest.json"

const ColumnType = Schema.Literal("text", "bigint", "double", "boolean", "timestamp", "decimal", "bytes", "json")

const TableEntry = Schema.Struct({
  file: Schema.String,
  columns: Schema.Array(Schema.Struct({ name: Schema.String, type: ColumnType }))
})
type TableEntry = typeof TableEntry.Type

const Manifest = Schema.Struct({
  tables: Schema.Record({ key: Schema.String, value: TableEntry }),
  /** pipeline name → its state file */
  states: Schema.Record({ key: Schema.String, value: Schema.String }),
  /** schema name → its `_dlt_version` rows (a manifest from before schemas were stored has none) */
  schemas: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  /** `_dlt_loads`: every committed load (status 0) */
  loads: Schema.Array(
    Schema.Struct({
      load_id: Schema.String,
      schema_name: Schema.String,
      status: Schema.Number,
      inserted_at: Schema.String,
      schema_version_hash: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null })
    })
  )
})
type Manifest = typeof Manifest.Type

const EMPTY: Manifest = { tables: {}, states: {}, schemas: {}, loads: [] }

/** a row of a schema file: the columns of dlt's `_dlt_version` */
const SchemaVersion = Schema.Struct({
  version: Schema.Number,
  engine_version: Schema.Number,
  inserted_at: Schema.Date,
  schema_name: Schema.String,
  version_hash: Schema.String,
  schema: Schema.String
})
type SchemaVersion = typeof SchemaVersion.Type
const decodeVersions = Schema.decodeUnknown(Schema.parseJson(Schema.Array(SchemaVersion)))
const encodeVersions = Schema.encode(Schema.parseJson(Schema.Array(SchemaVersion), { space: 2 }))

/** a row of a state file: the columns of dlt's `_dlt_pipeline_state` */
const StateRow = Schema.Struct({
  version: Schema.Number,
  engine_version: Schema.Number,
  pipeline_name: Schema.String,
  state: Schema.String,
  created_at: Schema.Date,
  version_hash: Schema.NullOr(Schema.String),
  load_id: Schema.String,
  /** the schema version its load was committed with (`_dlt_loads.schema_version_hash`) */
  schema_version_hash: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null })
})
type StateRow = typeof StateRow.Type

const Row = Schema.Record({ key: Schema.String, value: Schema.Unknown })
type Row = typeof Row.Type

const decodeManifest = Schema.decodeUnknown(Schema.parseJson(Manifest))
const encodeManifest = Schema.encode(Schema.parseJson(Manifest, { space: 2 }))
const decodeStates = Schema.decodeUnknown(Schema.parseJson(Schema.Array(StateRow)))
const encodeStates = Schema.encode(Schema.parseJson(Schema.Array(StateRow), { space: 2 }))
const decodeRow = Schema.decodeUnknown(Schema.parseJson(Row))

const decodeLines = (text: string) =>
  Effect.forEach(
    text.split("\n").filter((line) => line !== ""),
    (line) => decodeRow(line)
  )
const toLines = (rows: Iterable<Row>): string => Array.from(rows, (row) => `${JSON.stringify(row)}\n`).join("")

/** a cell as plain JSON: timestamps as ISO text, decimals as text, bytes as base64 */
const toJson = (cell: Destination.Cell): unknown => {
  if (cell instanceof Date) return cell.toISOString()
  if (cell instanceof Uint8Array) return Buffer.from(cell).toString("base64")
  if (BigDecimal.isBigDecimal(cell)) return BigDecimal.format(cell)
  if (typeof cell === "bigint") return Number.isSafeInteger(Number(cell)) ? Number(cell) : cell.toString()
  return cell
}

/** a staged row as one JSON line; null cells are left out */
const toLine = (columns: ReadonlyArray<Destination.Column>, row: ReadonlyArray<Destination.Cell>): string => {
  const record: Record<string, unknown> = {}
  columns.forEach((column, i) => {
    const cell = row[i]
    if (cell !== undefined && cell !== null) record[column.name] = toJson(cell)
  })
  return `${JSON.stringify(record)}\n`
}

/** an upsert on `key`: staged rows replace kept rows with the same key; the last staged row of a key wins */
const merge = (
  kept: ReadonlyArray<Row>,
  staged: ReadonlyArray<Row>,
  key: ReadonlyArray<string>
): ReadonlyArray<Row> => {
  const keyOf = (row: Row) => JSON.stringify(key.map((column) => row[column] ?? null))
  const incoming = new Map<string, Row>()
  for (const row of staged) {
    incoming.delete(keyOf(row))
    incoming.set(keyOf(row), row)
  }
  return [...kept.filter((row) => !incoming.has(keyOf(row))), ...incoming.values()]
}

const isSystemError = (reason: PlatformError.SystemErrorReason) => (error: unknown) =>
  PlatformError.isPlatformError(error) && error._tag === "SystemError" && error.reason === reason
const isNotFound = isSystemError("NotFound")
const isAlreadyExists = isSystemError("AlreadyExists")

/** @since 0.1.0 */
export interface JsonlOptions {
  /** where the datasets go, `<directory>/<dataset>/` each */
  readonly directory: string
}

/**
 * The destination service over a directory.
 */
export const make = (
  options: JsonlOptions
): Effect.Effect<Destination.DestinationShape, never, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const directory = path.resolve(options.directory)
    const rootOf = (target: Destination.DatasetTarget) => path.join(directory, target.dataset)

    const fail =
      (operation: string) =>
      (error: { readonly message: string }): Destination.DestinationError =>
        error instanceof Destination.DestinationError
          ? error
          : new Destination.DestinationError({ destination: NAME, operation, reason: error.message })

    const readText = (file: string) =>
      fs.readFileString(file).pipe(
        Effect.map(Option.some),
        Effect.catchIf(isNotFound, () => Effect.succeed(Option.none<string>()))
      )

    const readManifest = (root: string) =>
      Effect.flatMap(
        readText(path.join(root, MANIFEST)),
        Option.match({ onNone: () => Effect.succeed(EMPTY), onSome: (text) => decodeManifest(text) })
      )

    /** a pipeline's state rows, newest first */
    const readStates = (root: string, manifest: Manifest, pipelineName: string) => {
      const file = manifest.states[pipelineName]
      return file === undefined
        ? Effect.succeed<ReadonlyArray<StateRow>>([])
        : Effect.flatMap(fs.readFileString(path.join(root, file)), (text) => decodeStates(text))
    }

    /** a schema's `_dlt_version` rows, newest first */
    const readVersions = (root: string, manifest: Manifest, schemaName: string) => {
      const file = manifest.schemas[schemaName]
      return file === undefined
        ? Effect.succeed<ReadonlyArray<SchemaVersion>>([])
        : Effect.flatMap(fs.readFileString(path.join(root, file)), (text) => decodeVersions(text))
    }

    const pickVersion = (
      rows: ReadonlyArray<SchemaVersion>,
      selector: Destination.SchemaSelector
    ): Option.Option<Destination.SchemaRow> =>
      Option.map(
        Option.fromNullable(
          selector._tag === "Newest" ? rows[0] : rows.find((row) => row.version_hash === selector.hash)
        ),
        (row) => ({
          version: row.version,
          engineVersion: row.engine_version,
          insertedAt: row.inserted_at,
          schemaName: row.schema_name,
          versionHash: row.version_hash,
          schema: row.schema
        })
      )

    /**
     * Reads from the committed snapshot. A commit removes the files of the snapshot it replaced, so
     * a file that vanished between reading the manifest and reading the file means: start again
     * from the new manifest.
     */
    const committed = <A, E extends { readonly message: string }>(
      target: Destination.DatasetTarget,
      operation: string,
      read: (root: string, manifest: Manifest) => Effect.Effect<A, E>
    ) =>
      Effect.flatMap(readManifest(rootOf(target)), (manifest) => read(rootOf(target), manifest)).pipe(
        Effect.retry({ times: 3, while: isNotFound }),
        Effect.mapError(fail(operation))
      )

    /** temp file, fsync, rename: the file holds the old content or the new, never a mix */
    const writeAtomically = (file: string, text: string) => {
      const tmp = `${file}.${randomUUID()}.tmp`
      return Effect.scoped(
        Effect.gen(function* () {
          const handle = yield* fs.open(tmp, { flag: "wx" })
          yield* handle.writeAll(new TextEncoder().encode(text))
          yield* handle.sync
        })
      ).pipe(
        Effect.zipRight(fs.rename(tmp, file)),
        Effect.onError(() => fs.remove(tmp).pipe(Effect.ignore))
      )
    }

    // makes the renames in `dir` durable; best effort, since not every platform opens directories
    const syncDirectory = (dir: string) =>
      Effect.scoped(Effect.flatMap(fs.open(dir, { flag: "r" }), (handle) => handle.sync)).pipe(Effect.ignore)

    /**
     * One commit at a time per dataset, across processes: the lock file is created exclusively and
     * removed when the scope closes. A crashed process leaves it behind; the error says so.
     */
    const lock = (root: string) => {
      const file = path.join(root, ".lock")
      const acquire = fs.writeFileString(file, `${process.pid}@${hostname()}`, { flag: "wx" }).pipe(
        Effect.retry({ while: isAlreadyExists, schedule: Schedule.spaced("20 millis"), times: 500 }),
        Effect.catchIf(isAlreadyExists, () =>
          Effect.fail(
            new Destination.DestinationError({
              destination: NAME,
              operation: "lock the dataset",
              reason: `${file} was held for 10 s; if no load is running (a crashed process left it), delete it`
            })
          )
        )
      )
      return Effect.acquireRelease(Effect.zipRight(fs.makeDirectory(root, { recursive: true }), acquire), () =>
        fs.remove(file).pipe(Effect.ignore)
      )
    }

    // after the manifest moved on: superseded files and the debris of crashed commits
    const removeUnreferenced = (root: string, manifest: Manifest) =>
      Effect.gen(function* () {
        const live = new Set([
          ...Object.values(manifest.tables).map((t) => t.file),
          ...Object.values(manifest.states),
          ...Object.values(manifest.schemas)
        ])
        for (const dir of ["tables", "state", "schemas"]) {
          const entries = yield* fs.readDirectory(path.join(root, dir)).pipe(Effect.orElseSucceed(() => []))
          for (const entry of entries) {
            if (!live.has(`${dir}/${entry}`)) yield* fs.remove(path.join(root, dir, entry)).pipe(Effect.ignore)
          }
        }
      })

    /** where a stage keeps its rows: the load's spool directory, which the pipeline removes afterwards */
    const spoolOf = (stage: Destination.Stage): string | undefined =>
      typeof (stage as { readonly spoolDir?: unknown }).spoolDir === "string"
        ? (stage as unknown as { readonly spoolDir: string }).spoolDir
        : undefined

    /**
     * One transaction: reads and writes go to a working copy of the manifest and the state files;
     * new table files are written as the transaction goes (invisible until the manifest names them),
     * and the manifest's rename at the end commits everything at once.
     */
    const transaction: Destination.DestinationShape["transaction"] = (target, options, body) =>
      Effect.scoped(
        Effect.gen(function* () {
          const root = rootOf(target)
          yield* lock(root)
          const current = yield* readManifest(root)
          const tables: Record<string, TableEntry> = { ...current.tables }
          const states = new Map<string, ReadonlyArray<StateRow>>()
          const statesOf = (pipelineName: string) =>
            Effect.gen(function* () {
              const cached = states.get(pipelineName)
              if (cached !== undefined) return cached
              const rows = yield* readStates(root, current, pipelineName)
              states.set(pipelineName, rows)
              return rows
            }).pipe(Effect.mapError(fail("read the state")))
          const changedStates = new Set<string>()
          const versions = new Map<string, ReadonlyArray<SchemaVersion>>()
          const versionsOf = (schemaName: string) =>
            Effect.gen(function* () {
              const cached = versions.get(schemaName)
              if (cached !== undefined) return cached
              const rows = yield* readVersions(root, current, schemaName)
              versions.set(schemaName, rows)
              return rows
            }).pipe(Effect.mapError(fail("read the stored schema")))
          const changedSchemas = new Set<string>()
          const loads: Array<Manifest["loads"][number]> = []
          const spoolDir = Option.flatMap(options.stage, (stage) => Option.fromNullable(spoolOf(stage)))

          const tx: Destination.Transaction = {
            stateRows: (pipelineName, limit) =>
              Effect.map(statesOf(pipelineName), (rows) => rows.slice(0, Math.max(0, limit)).map(toInfo)),
            readState: (pipelineName, id) =>
              Effect.map(statesOf(pipelineName), (rows) =>
                Option.map(Option.fromNullable(rows.find((row) => row.load_id === id)), toStored)
              ),
            dropTables: (names) =>
              Effect.sync(() => {
                for (const name of names) delete tables[name]
              }),
            writeTables: (written) =>
              Effect.gen(function* () {
                yield* fs.makeDirectory(path.join(root, "tables"), { recursive: true })
                for (const table of written) {
                  const previous = tables[table.name]
                  const staged = Option.isSome(spoolDir)
                    ? Option.getOrElse(yield* readText(path.join(spoolDir.value, `${table.name}.jsonl`)), () => "")
                    : ""
                  const kept =
                    previous === undefined || table.writeDisposition === "replace"
                      ? ""
                      : yield* fs.readFileString(path.join(root, previous.file))
                  const text =
                    table.writeDisposition === "merge" && table.primaryKey.length > 0
                      ? toLines(merge(yield* decodeLines(kept), yield* decodeLines(staged), table.primaryKey))
                      : kept + staged
                  const file = `tables/${table.name}.${randomUUID()}.jsonl`
                  yield* writeAtomically(path.join(root, file), text)
                  // columns only ever grow, as in the SQL destinations
                  const known = new Set((previous?.columns ?? []).map((c) => c.name))
                  const added = table.columns
                    .filter((c) => !known.has(c.name))
                    .map((c) => ({ name: c.name, type: c.type }))
                  tables[table.name] = { file, columns: [...(previous?.columns ?? []), ...added] }
                }
              }).pipe(Effect.mapError(fail("write the tables"))),
            insertLoad: (row) =>
              Effect.sync(() => {
                loads.push({
                  load_id: row.loadId,
                  schema_name: row.schemaName,
                  status: row.status,
                  inserted_at: row.insertedAt.toISOString(),
                  schema_version_hash: row.schemaVersionHash
                })
              }),
            insertState: (row) =>
              Effect.map(statesOf(row.pipelineName), (rows) => {
                const stored: StateRow = {
                  version: row.version,
                  engine_version: row.engineVersion,
                  pipeline_name: row.pipelineName,
                  state: row.state,
                  created_at: row.createdAt,
                  version_hash: row.versionHash,
                  load_id: row.loadId,
                  schema_version_hash: loads.find((load) => load.load_id === row.loadId)?.schema_version_hash ?? null
                }
                states.set(row.pipelineName, [stored, ...rows])
                changedStates.add(row.pipelineName)
              }),
            readSchema: (schemaName, selector) =>
              Effect.map(versionsOf(schemaName), (rows) => pickVersion(rows, selector)),
            insertSchema: (row) =>
              Effect.map(versionsOf(row.schemaName), (rows) => {
                versions.set(row.schemaName, [
                  {
                    version: row.version,
                    engine_version: row.engineVersion,
                    inserted_at: row.insertedAt,
                    schema_name: row.schemaName,
                    version_hash: row.versionHash,
                    schema: row.schema
                  },
                  ...rows
                ])
                changedSchemas.add(row.schemaName)
              }),
            deleteStatesBefore: (pipelineName, id) =>
              Effect.map(statesOf(pipelineName), (rows) => {
                states.set(
                  pipelineName,
                  rows.filter((row) => row.load_id >= id)
                )
                changedStates.add(pipelineName)
              })
          }

          const result = yield* body(tx)

          const stateFiles: Record<string, string> = { ...current.states }
          yield* fs.makeDirectory(path.join(root, "state"), { recursive: true })
          for (const pipelineName of changedStates) {
            const file = `state/${encodeURIComponent(pipelineName)}.${randomUUID()}.json`
            yield* writeAtomically(path.join(root, file), yield* encodeStates(states.get(pipelineName) ?? []))
            stateFiles[pipelineName] = file
          }
          // the files must be durable before the manifest that names them
          yield* syncDirectory(path.join(root, "tables"))
          yield* syncDirectory(path.join(root, "state"))
          const schemaFiles: Record<string, string> = { ...current.schemas }
          yield* fs.makeDirectory(path.join(root, "schemas"), { recursive: true })
          for (const schemaName of changedSchemas) {
            const file = `schemas/${encodeURIComponent(schemaName)}.${randomUUID()}.json`
            yield* writeAtomically(path.join(root, file), yield* encodeVersions(versions.get(schemaName) ?? []))
            schemaFiles[schemaName] = file
          }
          yield* syncDirectory(path.join(root, "schemas"))
          const next: Manifest = {
            tables,
            states: stateFiles,
            schemas: schemaFiles,
            loads: [...current.loads, ...loads]
          }
          // THE COMMIT POINT: rows and state of this load become visible with this one rename
          yield* writeAtomically(path.join(root, MANIFEST), yield* encodeManifest(next))
          yield* syncDirectory(root)
          yield* removeUnreferenced(root, next)
          return result
        })
      ).pipe(
        Effect.catchAll((error) =>
          PlatformError.isPlatformError(error) || error instanceof ParseResult.ParseError
            ? Effect.fail(fail("commit the load")(error))
            : Effect.fail(error)
        )
      )

    const toInfo = (row: StateRow): Destination.StateRowInfo => ({
      version: row.version,
      engineVersion: row.engine_version,
      pipelineName: row.pipeline_name,
      createdAt: row.created_at,
      versionHash: row.version_hash,
      loadId: row.load_id,
      schemaVersionHash: row.schema_version_hash
    })

    const toStored = (row: StateRow): Destination.StoredState => ({ ...toInfo(row), state: row.state })

    const stateHistory = (target: Destination.DatasetTarget, pipelineName: string) =>
      committed(target, "read the state", (root, manifest) => readStates(root, manifest, pipelineName))

    const notSql = new Destination.DestinationError({
      destination: NAME,
      operation: "run a query",
      reason: "not a SQL destination: jsonl keeps rows in JSON-lines files; read a table with rows(table)"
    })

    return {
      name: NAME,
      type: "examples.destinations.jsonl",
      identity: () => `${NAME}:${directory}`,
      location: (target) => `${NAME}:${rootOf(target)}`,
      datasetExists: (target) =>
        fs.exists(path.join(rootOf(target), MANIFEST)).pipe(Effect.mapError(fail("check the dataset"))),
      stateRows: (target, pipelineName, limit) =>
        Effect.map(stateHistory(target, pipelineName), (rows) => rows.slice(0, Math.max(0, limit)).map(toInfo)),
      readSchema: (target, schemaName, selector) =>
        committed(target, "read the stored schema", (root, manifest) =>
          Effect.map(readVersions(root, manifest, schemaName), (rows) => pickVersion(rows, selector))
        ),
      readState: (target, pipelineName, loadId) =>
        Effect.map(stateHistory(target, pipelineName), (rows) =>
          Option.map(Option.fromNullable(rows.find((row) => row.load_id === loadId)), toStored)
        ),
      describeTables: (target, names) =>
        committed(target, "describe tables", (_root, manifest) =>
          Effect.succeed(
            new Map(
              names.flatMap((name) => {
                const entry = manifest.tables[name]
                return entry === undefined ? [] : [[name, entry.columns] as const]
              })
            )
          )
        ),
      stage: (_target, spoolDir) =>
        Effect.gen(function* () {
          const appending = yield* Effect.makeSemaphore(1)
          return {
            spoolDir,
            write: (table: Destination.TableSchema, batch: Destination.RowBatch) =>
              appending
                .withPermits(1)(
                  fs.writeFileString(
                    path.join(spoolDir, `${table.name}.jsonl`),
                    batch.rows.map((row) => toLine(batch.columns, row)).join(""),
                    { flag: "a" }
                  )
                )
                .pipe(Effect.mapError(fail(`stage rows of ${table.name}`)))
          }
        }),
      transaction,
      dataset: (target) =>
        Effect.succeed({
          name: target.dataset,
          sql: Option.none(),
          table: (name) => `${target.dataset}.${name}`,
          tableExists: (name) =>
            committed(target, "read a table", (_root, manifest) => Effect.succeed(manifest.tables[name] !== undefined)),
          rows: (name) =>
            committed(target, `read ${name}`, (root, manifest) =>
              Effect.gen(function* () {
                const entry = manifest.tables[name]
                if (entry === undefined) {
                  return yield* new Destination.DestinationError({
                    destination: NAME,
                    operation: `read ${name}`,
                    reason: "no such table"
                  })
                }
                const rows = yield* Effect.flatMap(fs.readFileString(path.join(root, entry.file)), decodeLines)
                // every column present, null where a row has no value, as a SQL table reads
                return rows.map((row) => Object.fromEntries(entry.columns.map((c) => [c.name, row[c.name] ?? null])))
              })
            ),
          execute: () => Effect.fail(notSql)
        }),
      dropDataset: (target) =>
        Effect.scoped(Effect.zipRight(lock(rootOf(target)), fs.remove(rootOf(target), { recursive: true }))).pipe(
          Effect.mapError(fail("drop the dataset"))
        )
    } satisfies Destination.DestinationShape
  })

/**
 * The JSON-lines destination as a layer, to provide in place of `Destination.sqlite()`.
 *
 * @example
 * ```ts
 * Pipeline.run(source).pipe(Effect.provide(Jsonl.layer({ directory: "./data" })))
 * ```
 */
export const layer = (options: JsonlOptions): Layer.Layer<Destination.Destination> =>
  Layer.effect(Destination.Destination, make(options)).pipe(Layer.provide(NodeContext.layer))
