/**
 * The state versions a destination keeps for a pipeline (`pipestate pipeline <name> history`), and
 * restoring an old one (`pipestate pipeline <name> restore --version N`).
 *
 * A restore never rewrites history: it commits a NEW version whose content equals version N, in a
 * load of its own, with the same optimistic check as a run (the destination's newest state must
 * still be the one the restore read). {@link commitVersion} is that commit, shared with `Drop`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Destination, History, Pipeline } from "effect-pipestate"
 *
 * const program = Effect.gen(function* () {
 *   const versions = yield* History.list({ limit: 10 })
 *   const outcome = yield* History.restore({ version: versions[1]!.version })
 *   console.log(outcome._tag) // "Restored"
 * })
 * program.pipe(
 *   Effect.provide(Pipeline.layer({ name: "chess_pipeline", dataset: "chess_data" })),
 *   Effect.provide(Destination.sqlite())
 * )
 * ```
 *
 * @since 0.1.0
 */
import { Effect, Option, Schema } from "effect"
import {
  type DatasetTarget,
  Destination,
  type DestinationError,
  type DestinationShape,
  type StateConflict,
  type StateRowInfo
} from "../destination/Destination.js"
import * as StoredSchema from "../internal/schema/StoredSchema.js"
import * as PipelineState from "../internal/state/PipelineState.js"
import * as Version from "../internal/state/StateVersion.js"
import { Pipeline } from "./PipelineConfig.js"
import * as Schemas from "../internal/pipeline/Schemas.js"
import * as Dataset from "../dataset/Dataset.js"
import * as Session from "../internal/pipeline/Session.js"
import * as StateSync from "../internal/pipeline/StateSync.js"
import { shellQuote } from "../internal/Shell.js"

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

/**
 * One state version kept in the destination (a row of `_dlt_pipeline_state` whose load completed).
 *
 * @example
 * ```ts
 * const v: History.StateVersion = { version: 3, hash: "3cJ2...=", loadId: "1714557600.000001", createdAt: new Date(), engineVersion: 4 }
 * ```
 *
 * @since 0.1.0
 */
export interface StateVersion {
  readonly version: number
  readonly hash: string | null
  readonly loadId: string
  readonly createdAt: Date
  readonly engineVersion: number
  /** the run with checkpoints the version's load belongs to (see `Checkpoint`); absent for other runs */
  readonly run?: {
    /** the load id of the run's first load, shared by all its loads */
    readonly runId: string
    /** 1, 2, … in the order the run committed */
    readonly checkpoint: number
    /** the run's final commit (a run killed after a checkpoint has none) */
    readonly final: boolean
  }
}

/**
 * The destination keeps no state version `version` for the pipeline: it never existed, or it was
 * pruned (only the newest `keepStateVersions` are kept).
 *
 * @example
 * ```ts
 * History.restore({ version: 99 }).pipe(Effect.catchTag("VersionNotFound", (e) => Console.error(e.message)))
 * ```
 *
 * @since 0.1.0
 */
export class VersionNotFound extends Schema.TaggedError<VersionNotFound>()("VersionNotFound", {
  pipelineName: Schema.String,
  dataset: Schema.String,
  version: Schema.Number,
  available: Schema.Array(Schema.Number),
  /** the command that lists them, as a shell reads it (the CLI gives it with the flags it was given) */
  command: Schema.optional(Schema.String)
}) {
  override get message(): string {
    const kept =
      this.available.length === 0
        ? "it keeps no state for this pipeline"
        : `it keeps versions ${describeVersions(this.available)}`
    const command = this.command ?? `pipestate pipeline ${shellQuote(this.pipelineName)} history`
    return (
      `pipeline ${this.pipelineName}: dataset ${this.dataset} holds no state version ${this.version}; ${kept}. ` +
      `Run \`${command}\` to see them.`
    )
  }
}

/**
 * The destination holds no state for the pipeline, so there is nothing to restore from.
 *
 * @since 0.1.0
 */
export const NoStateInDestination = Session.NoStateInDestination

/**
 * @since 0.1.0
 */
export type NoStateInDestination = Session.NoStateInDestination

// "3, 5, 7..12" for messages: runs of consecutive versions are collapsed
const describeVersions = (versions: ReadonlyArray<number>): string => {
  const sorted = [...new Set(versions)].sort((a, b) => a - b)
  const runs: Array<string> = []
  let start = sorted[0]
  let previous = start
  for (const v of [...sorted.slice(1), Number.NaN]) {
    if (start === undefined || previous === undefined) break
    if (v === previous + 1) {
      previous = v
      continue
    }
    runs.push(start === previous ? String(start) : `${start}..${previous}`)
    start = v
    previous = v
  }
  return runs.join(", ")
}

const toVersion = (row: StateRowInfo): StateVersion => ({
  version: row.version,
  hash: row.versionHash,
  loadId: row.loadId,
  createdAt: row.createdAt,
  engineVersion: row.engineVersion
})

// ---------------------------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------------------------

/**
 * The state versions the destination keeps for the pipeline, newest first (at most `limit`,
 * default 20).
 *
 * @example
 * ```ts
 * const versions = yield* History.list({ limit: 5 })
 * for (const v of versions) console.log(v.version, v.hash, v.loadId, v.createdAt.toISOString())
 * ```
 *
 * @since 0.1.0
 */
export const list = (
  options: { readonly limit?: number } = {}
): Effect.Effect<ReadonlyArray<StateVersion>, DestinationError, Pipeline | Destination> =>
  Effect.gen(function* () {
    const { config, workingDir } = yield* Pipeline
    const destination = yield* Destination
    const limit = Math.max(1, Math.floor(options.limit ?? 20))
    const target = { dataset: config.dataset, pipelineDir: workingDir.datasetDir }
    const rows = yield* destination.stateRows(target, config.name, limit)
    const runs =
      destination.runLoads === undefined
        ? []
        : yield* destination.runLoads(
            target,
            rows.map((row) => row.loadId)
          )
    const byLoad = new Map(runs.map((r) => [r.loadId, r]))
    return rows.map((row) => {
      const run = byLoad.get(row.loadId)
      const version = toVersion(row)
      return run === undefined
        ? version
        : { ...version, run: { runId: run.runId, checkpoint: run.checkpoint, final: run.final } }
    })
  })

// Rows carry their blobs, so fetch only as deep as version N can be: in a dense history it sits
// (newest - N) rows down; a sparse one (dlt writes a row only on change) takes a few doublings.
const findVersion = (
  destination: DestinationShape,
  target: DatasetTarget,
  pipelineName: string,
  newest: StateRowInfo,
  version: number
): Effect.Effect<StateRowInfo, DestinationError | VersionNotFound> =>
  Effect.gen(function* () {
    if (version === newest.version) return newest
    let limit = Math.max(2, newest.version - version + 1)
    for (;;) {
      const rows = yield* destination.stateRows(target, pipelineName, limit)
      const found = rows.find((row) => row.version === version)
      if (found !== undefined) return found
      if (rows.length < limit) {
        return yield* new VersionNotFound({
          pipelineName,
          dataset: target.dataset,
          version,
          available: rows.map((row) => row.version)
        })
      }
      limit *= 2
    }
  })

// ---------------------------------------------------------------------------------------------
// Restoring
// ---------------------------------------------------------------------------------------------

/**
 * `state` without the resource slots whose tables are missing from the dataset. A resource's
 * tables come from the stored schema the state's load was committed with (`schemaHash`) and the
 * newest one; a resource no schema gives a table to (it keeps state only) is left alone.
 */
const withoutMissingData = (
  destination: DestinationShape,
  target: DatasetTarget,
  state: PipelineState.PipelineState,
  schemaHash: string | null
) =>
  Effect.gen(function* () {
    const reset: Array<string> = []
    let next = state
    for (const source of Object.keys(state.sources)) {
      const slots = Object.keys(PipelineState.getResourceSlots(state, source))
      if (slots.length === 0) continue
      const schemas = [
        ...(schemaHash === null
          ? []
          : Option.toArray(yield* Schemas.read(destination, target, source, { _tag: "Hash", hash: schemaHash }))),
        ...Option.toArray(yield* Schemas.newest(destination, target, source))
      ]
      const tablesOf = (resource: string) => [
        ...new Set(schemas.flatMap((schema) => StoredSchema.tablesOf(schema, resource)))
      ]
      const wanted = [...new Set(slots.flatMap(tablesOf))]
      const present = wanted.length === 0 ? new Map() : yield* destination.describeTables(target, wanted)
      for (const resource of slots) {
        const tables = tablesOf(resource)
        if (tables.length > 0 && tables.some((table) => !present.has(table))) {
          next = PipelineState.withoutResourceSlot(next, source, resource)
          reset.push(`${source}.${resource}`)
        }
      }
    }
    return { state: next, reset }
  })

/**
 * The rows of `sources`' tables loaded after `loadId` (their `_dlt_load_id` sorts after it): data
 * the restored state does not know of. Counted through the dataset; a destination that cannot be
 * queried (not SQL) reports none.
 */
const rowsLoadedAfter = (
  destination: DestinationShape,
  target: DatasetTarget,
  sources: ReadonlyArray<string>,
  loadId: string
): Effect.Effect<ReadonlyArray<LaterRows>> =>
  Effect.gen(function* () {
    const tables = new Map<string, Set<string>>()
    for (const source of sources) {
      const schema = yield* Schemas.newest(destination, target, source)
      if (Option.isNone(schema)) continue
      for (const table of StoredSchema.dataTables(schema.value)) {
        if (table.columns[StoredSchema.C_DLT_LOAD_ID] === undefined) continue
        const writers = tables.get(table.name) ?? new Set<string>()
        for (const writer of StoredSchema.writersOf(schema.value, table)) writers.add(writer)
        tables.set(table.name, writers)
      }
    }
    if (tables.size === 0) return []
    const dataset = yield* Dataset.open(destination, target)
    const found: Array<LaterRows> = []
    for (const [name, writers] of [...tables].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const table = dataset.table(name)
      if (!(yield* table.exists)) continue
      const rows =
        yield* dataset.query`SELECT count(*) AS n FROM ${table} WHERE ${dataset.sql(StoredSchema.C_DLT_LOAD_ID)} > ${loadId}`
      const n = Number(rows[0]?.n ?? 0)
      if (n > 0) found.push({ table: name, rows: n, resources: [...writers].sort() })
    }
    return found
  }).pipe(
    // advisory: a count that cannot be made never stops a restore
    Effect.catchAll(() => Effect.succeed([]))
  )

// ---------------------------------------------------------------------------------------------
// Restore
// ---------------------------------------------------------------------------------------------

/**
 * Rows of a table loaded after the version a restore brings back.
 *
 * @since 0.2.0
 */
export interface LaterRows {
  readonly table: string
  readonly rows: number
  /** the resources that write the table */
  readonly resources: ReadonlyArray<string>
}

/**
 * What a restore is about to do, for a confirmation.
 *
 * @since 0.1.0
 */
export interface RestorePreview {
  readonly pipelineName: string
  readonly dataset: string
  /** where the destination keeps the dataset (never holds a secret) */
  readonly location: string
  /** the version whose content becomes the newest */
  readonly from: StateVersion
  /** the destination's newest version now */
  readonly newest: StateVersion
  /** the version the restore commits */
  readonly nextVersion: number
  /**
   * resources (`source.resource`) whose state the restore resets: version N says their data was
   * loaded, but their tables are no longer in the dataset (dropped since)
   */
  readonly resetResources: ReadonlyArray<string>
  /**
   * tables holding rows loaded after version N (newer `_dlt_load_id`): the restored state does not
   * know them, so the next run may load them again (an `append` table then holds them twice)
   */
  readonly laterRows: ReadonlyArray<LaterRows>
}

/**
 * How a restore ended.
 *
 * @since 0.1.0
 */
export type RestoreOutcome =
  | {
      readonly _tag: "Restored"
      readonly preview: RestorePreview
      readonly version: number
      readonly versionHash: string
      readonly loadId: string
    }
  /** version N's content is already the newest content: nothing to commit */
  | { readonly _tag: "AlreadyNewest"; readonly preview: RestorePreview }
  | { readonly _tag: "DryRun"; readonly preview: RestorePreview }
  | { readonly _tag: "Cancelled"; readonly preview: RestorePreview }

/**
 * @since 0.1.0
 */
export interface RestoreOptions<E, R> {
  readonly version: number
  /** compute and return the preview, change nothing */
  readonly dryRun?: boolean
  /** asked before committing, while the lock is held; `false` cancels */
  readonly confirm?: (preview: RestorePreview) => Effect.Effect<boolean, E, R>
}

/**
 * Makes an old state version the newest: commits a new version whose content equals version
 * `version` (a load of its own, no table touched), then writes it locally. Holds the working-dir
 * lock throughout.
 *
 * @example
 * ```ts
 * const outcome = yield* History.restore({ version: 3, confirm: (p) => Effect.succeed(p.nextVersion > 3) })
 * if (outcome._tag === "Restored") console.log(`version ${outcome.version} = content of version 3`)
 * ```
 *
 * @since 0.1.0
 */
export const restore = <E = never, R = never>(
  options: RestoreOptions<E, R>
): Effect.Effect<
  RestoreOutcome,
  | E
  | VersionNotFound
  | NoStateInDestination
  | DestinationError
  | StateConflict
  | Session.OpenError
  | Session.CommitError,
  R | Pipeline | Destination
> =>
  Effect.scoped(
    Effect.gen(function* () {
      const session = yield* Session.open({ restore: true })
      const { config, destination, datasetTarget } = session
      if (Option.isNone(session.remote)) {
        return yield* new Session.NoStateInDestination({
          pipelineName: config.name,
          dataset: config.dataset,
          location: destination.location(datasetTarget)
        })
      }
      const newest = session.remote.value
      const found = yield* findVersion(destination, datasetTarget, config.name, newest, options.version)
      const stored = yield* destination.readState(datasetTarget, config.name, found.loadId)
      if (Option.isNone(stored)) {
        // pruned between the listing and the read
        return yield* new VersionNotFound({
          pipelineName: config.name,
          dataset: config.dataset,
          version: options.version,
          available: []
        })
      }
      const old = yield* StateSync.decodeStored(stored.value, config.name)
      // the content of version N on top of the state this change starts from: the new version passes
      // the destination's newest and a local state that ran ahead of it
      // version N must not claim data the dataset lacks: a resource whose tables are gone (dropped
      // since) starts over, as after a drop
      const { state: safe, reset } = yield* withoutMissingData(destination, datasetTarget, old, found.schemaVersionHash)
      const draft = Version.onto(safe, session.state)
      const next = yield* Version.next(draft, newest.versionHash)
      const preview: RestorePreview = {
        pipelineName: config.name,
        dataset: config.dataset,
        location: destination.location(datasetTarget),
        from: toVersion(found),
        newest: toVersion(newest),
        nextVersion: next.state._state_version,
        resetResources: reset,
        laterRows: yield* rowsLoadedAfter(
          destination,
          datasetTarget,
          [...new Set([...Object.keys(old.sources), ...Object.keys(session.state.sources)])],
          found.loadId
        )
      }
      if (!next.changed) return { _tag: "AlreadyNewest", preview } as const
      if (options.dryRun === true) return { _tag: "DryRun", preview } as const
      if (options.confirm !== undefined && !(yield* options.confirm(preview))) {
        return { _tag: "Cancelled", preview } as const
      }
      const committed = yield* session.commit({
        draft,
        schemaName: draft.default_schema_name ?? Object.keys(draft.sources)[0] ?? config.name
      })
      return {
        _tag: "Restored",
        preview,
        version: committed.state._state_version,
        versionHash: committed.state._version_hash ?? "",
        loadId: committed.loadId ?? ""
      } as const
    })
  ).pipe(Effect.withSpan("pipestate.restore_version"))
