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
import { BigDecimal, Effect, Layer, Option, Schedule, Schema } from "effect"
import { Destination, type TableSchema } from "../../src/index.js"

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
  /** `_dlt_loads`: every committed load (status 0) */
  loads: Schema.Array(
    Schema.Struct({
      load_id: Schema.String,
      schema_name: Schema.String,
      status: Schema.Number,
      inserted_at: Schema.String
    })
  )
})
type Manifest = typeof Manifest.Type

const EMPTY: Manifest = { tables: {}, states: {}, loads: [] }

/** a row of a state file: the columns of dlt's `_dlt_pipeline_state` */
const StateRow = Schema.Struct({
  version: Schema.Number,
  engine_version: Schema.Number,
  pipeline_name: Schema.String,
  state: Schema.String,
  created_at: Schema.Date,
  version_hash: Schema.NullOr(Schema.String),
  load_id: Schema.String
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
const toJson = (cell: TableSchema.Cell): unknown => {
  if (cell instanceof Date) return cell.toISOString()
  if (cell instanceof Uint8Array) return Buffer.from(cell).toString("base64")
  if (BigDecimal.isBigDecimal(cell)) return BigDecimal.format(cell)
  if (typeof cell === "bigint") return Number.isSafeInteger(Number(cell)) ? Number(cell) : cell.toString()
  return cell
}

/** a staged row as one JSON line; null cells are left out */
const toLine = (columns: ReadonlyArray<TableSchema.Column>, row: ReadonlyArray<TableSchema.Cell>): string => {
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
        const live = new Set([...Object.values(manifest.tables).map((t) => t.file), ...Object.values(manifest.states)])
        for (const dir of ["tables", "state"]) {
          const entries = yield* fs.readDirectory(path.join(root, dir)).pipe(Effect.orElseSucceed(() => []))
          for (const entry of entries) {
            if (!live.has(`${dir}/${entry}`)) yield* fs.remove(path.join(root, dir, entry)).pipe(Effect.ignore)
          }
        }
      })

    const commitLoad = (target: Destination.DatasetTarget, spoolDir: string, commit: Destination.LoadCommit) =>
      Effect.scoped(
        Effect.gen(function* () {
          const root = rootOf(target)
          yield* lock(root)
          const current = yield* readManifest(root)
          const history = yield* readStates(root, current, commit.pipelineName)

          // optimistic concurrency: the newest state must still be the one this run started from
          const newest = history[0]
          if (commit.expected._tag === "Newest") {
            const expected = Option.getOrNull(commit.expected.newest)
            const same =
              newest === undefined
                ? expected === null
                : expected !== null && expected.version === newest.version && expected.hash === newest.version_hash
            if (!same) {
              return yield* new Destination.StateConflict({
                pipelineName: commit.pipelineName,
                dataset: target.dataset,
                expectedVersion: expected?.version ?? null,
                expectedHash: expected?.hash ?? null,
                foundVersion: newest?.version ?? null,
                foundHash: newest?.version_hash ?? null
              })
            }
          }

          // new files for every touched table: invisible until the manifest names them
          const tables: Record<string, TableEntry> = { ...current.tables }
          for (const name of commit.dropTables) delete tables[name]
          yield* fs.makeDirectory(path.join(root, "tables"), { recursive: true })
          for (const table of commit.tables) {
            const previous = tables[table.name]
            const staged = Option.getOrElse(yield* readText(path.join(spoolDir, `${table.name}.jsonl`)), () => "")
            const kept =
              previous === undefined || table.writeDisposition === "replace"
                ? ""
                : yield* fs.readFileString(path.join(root, previous.file))
            const text =
              table.writeDisposition === "merge" && table.primaryKey.length > 0
                ? toLines(merge(yield* decodeLines(kept), yield* decodeLines(staged), table.primaryKey))
                : kept + staged
            const file = `tables/${table.name}.${commit.loadId}.jsonl`
            yield* writeAtomically(path.join(root, file), text)
            // columns only ever grow, as in the SQL destinations
            const known = new Set((previous?.columns ?? []).map((c) => c.name))
            const added = table.columns.filter((c) => !known.has(c.name)).map((c) => ({ name: c.name, type: c.type }))
            tables[table.name] = { file, columns: [...(previous?.columns ?? []), ...added] }
          }

          const states: Record<string, string> = { ...current.states }
          if (Option.isSome(commit.state)) {
            const state = commit.state.value
            const row: StateRow = {
              version: state.version,
              engine_version: state.engineVersion,
              pipeline_name: state.pipelineName,
              state: state.state,
              created_at: state.createdAt,
              version_hash: state.versionHash,
              load_id: commit.loadId
            }
            // the newest `keepStateVersions` rows stay: the history is bounded
            const rows = [row, ...history].slice(0, Math.max(1, commit.keepStateVersions))
            const file = `state/${encodeURIComponent(commit.pipelineName)}.${commit.loadId}.json`
            yield* fs.makeDirectory(path.join(root, "state"), { recursive: true })
            yield* writeAtomically(path.join(root, file), yield* encodeStates(rows))
            states[commit.pipelineName] = file
          }

          // the files must be durable before the manifest that names them
          yield* syncDirectory(path.join(root, "tables"))
          yield* syncDirectory(path.join(root, "state"))
          const next: Manifest = {
            tables,
            states,
            loads: [
              ...current.loads,
              {
                load_id: commit.loadId,
                schema_name: commit.schemaName,
                status: 0,
                inserted_at: new Date().toISOString()
              }
            ]
          }
          // THE COMMIT POINT: rows and state of this load become visible with this one rename
          yield* writeAtomically(path.join(root, MANIFEST), yield* encodeManifest(next))
          yield* syncDirectory(root)
          yield* removeUnreferenced(root, next)
        })
      ).pipe(
        Effect.mapError((error) =>
          error instanceof Destination.StateConflict ? error : fail("commit the load")(error)
        )
      )

    const stateHistory = (target: Destination.DatasetTarget, pipelineName: string) =>
      committed(target, "read the state", (root, manifest) => readStates(root, manifest, pipelineName)).pipe(
        Effect.map((rows) =>
          rows.map(
            (row): Destination.StoredState => ({
              version: row.version,
              engineVersion: row.engine_version,
              pipelineName: row.pipeline_name,
              state: row.state,
              createdAt: row.created_at,
              versionHash: row.version_hash,
              loadId: row.load_id
            })
          )
        )
      )

    const notSql = new Destination.DestinationError({
      destination: NAME,
      operation: "run a query",
      reason: "not a SQL destination: jsonl keeps rows in JSON-lines files; read a table with rows(table)"
    })

    return {
      name: NAME,
      type: "examples.destinations.jsonl",
      location: (target) => `${NAME}:${rootOf(target)}`,
      datasetExists: (target) =>
        fs.exists(path.join(rootOf(target), MANIFEST)).pipe(Effect.mapError(fail("check the dataset"))),
      newestState: (target, pipelineName) =>
        Effect.map(stateHistory(target, pipelineName), (rows) => Option.fromNullable(rows[0])),
      stateHistory: (target, pipelineName, limit) =>
        Effect.map(stateHistory(target, pipelineName), (rows) => rows.slice(0, Math.max(0, limit))),
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
      openLoad: (target, spoolDir) =>
        Effect.gen(function* () {
          // rows are staged in the load's spool directory, which the pipeline removes afterwards
          const appending = yield* Effect.makeSemaphore(1)
          return {
            write: (table, batch) =>
              appending
                .withPermits(1)(
                  fs.writeFileString(
                    path.join(spoolDir, `${table.name}.jsonl`),
                    batch.rows.map((row) => toLine(batch.columns, row)).join(""),
                    { flag: "a" }
                  )
                )
                .pipe(Effect.mapError(fail(`stage rows of ${table.name}`))),
            commit: (commit) => commitLoad(target, spoolDir, commit)
          }
        }),
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
