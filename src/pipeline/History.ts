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
 * import { Destination, History, Pipeline } from "pipestate"
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
  type Expectation,
  type StateConflict,
  type StoredState
} from "../destination/Destination.js"
import { nextLoadId } from "../destination/SqlDestination.js"
import * as PipelineState from "../state/PipelineState.js"
import * as StateBlob from "../state/StateBlob.js"
import type { NonSerializableStateValue } from "../state/StateValue.js"
import { Pipeline, type PipelineShape } from "./Pipeline.js"
import * as StateSync from "./StateSync.js"
import type * as WorkingDir from "./WorkingDir.js"

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
  available: Schema.Array(Schema.Number)
}) {
  override get message(): string {
    const kept =
      this.available.length === 0
        ? "it keeps no state for this pipeline"
        : `it keeps versions ${describeVersions(this.available)}`
    return (
      `pipeline ${this.pipelineName}: dataset ${this.dataset} holds no state version ${this.version}; ${kept}. ` +
      `Run \`pipestate pipeline ${this.pipelineName} history\` to see them.`
    )
  }
}

/**
 * The destination holds no state for the pipeline, so there is nothing to restore or drop from.
 *
 * @example
 * ```ts
 * // pipeline chess_pipeline: dataset chess_data (/p/chess_data.sqlite) holds no state of this pipeline ...
 * ```
 *
 * @since 0.1.0
 */
export class NoStateInDestination extends Schema.TaggedError<NoStateInDestination>()("NoStateInDestination", {
  pipelineName: Schema.String,
  dataset: Schema.String,
  location: Schema.String
}) {
  override get message(): string {
    return (
      `pipeline ${this.pipelineName}: dataset ${this.dataset} (${this.location}) holds no state of this pipeline. ` +
      "Check the destination and dataset (--destination, --url, --dataset), or run the pipeline first."
    )
  }
}

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

const toVersion = (row: StoredState): StateVersion => ({
  version: row.version,
  hash: row.versionHash,
  loadId: row.loadId,
  createdAt: row.createdAt,
  engineVersion: row.engineVersion
})

const targetOf = (pipeline: PipelineShape): DatasetTarget => ({
  dataset: pipeline.config.dataset,
  pipelineDir: pipeline.workingDir.dir
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
    const pipeline = yield* Pipeline
    const destination = yield* Destination
    const limit = Math.max(1, Math.floor(options.limit ?? 20))
    const rows = yield* destination.stateHistory(targetOf(pipeline), pipeline.config.name, limit)
    return rows.map(toVersion)
  })

// Rows carry their blobs, so fetch only as deep as version N can be: in a dense history it sits
// (newest - N) rows down; a sparse one (dlt writes a row only on change) takes a few doublings.
const findVersion = (
  destination: DestinationShape,
  target: DatasetTarget,
  pipelineName: string,
  newest: StoredState,
  version: number
): Effect.Effect<StoredState, DestinationError | VersionNotFound> =>
  Effect.gen(function* () {
    if (version === newest.version) return newest
    let limit = Math.max(2, newest.version - version + 1)
    for (;;) {
      const rows = yield* destination.stateHistory(target, pipelineName, limit)
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
// Committing a version
// ---------------------------------------------------------------------------------------------

/**
 * What {@link commitVersion} commits.
 *
 * @since 0.1.0
 */
export interface CommitVersion {
  /** the new document, version and hash already set (see `PipelineState.bumpVersion`) */
  readonly state: PipelineState.PipelineState
  /** what the destination's newest state must still be */
  readonly expected: Expectation
  /** the newest load id seen, so the new load id sorts after it */
  readonly newestLoadId: Option.Option<string>
  /** tables dropped in the same transaction (`_dlt*` tables must not be listed) */
  readonly dropTables: ReadonlyArray<string>
}

/**
 * Commits a state as a new version, in a load of its own (a new `_dlt_loads` row), in ONE
 * transaction with the drop of `dropTables`; then writes it to the working dir. The caller holds
 * the working-dir lock. A `StateConflict` means another run committed in between: nothing was
 * written.
 *
 * @example
 * ```ts
 * const next = yield* PipelineState.bumpVersion(changed)
 * yield* History.commitVersion(pipeline, destination, { state: next, expected, newestLoadId, dropTables: ["players_games"] })
 * ```
 *
 * @since 0.1.0
 */
export const commitVersion = (
  pipeline: PipelineShape,
  destination: DestinationShape,
  commit: CommitVersion
): Effect.Effect<
  { readonly loadId: string },
  DestinationError | StateConflict | WorkingDir.WorkingDirError | NonSerializableStateValue
> =>
  Effect.scoped(
    Effect.gen(function* () {
      const { config, workingDir } = pipeline
      const state = commit.state
      const blob = yield* StateBlob.encode(state)
      const loadId = nextLoadId(commit.newestLoadId)
      const spoolDir = yield* workingDir.makeSpool(loadId)
      const job = yield* destination.openLoad(targetOf(pipeline), spoolDir)
      yield* job.commit({
        loadId,
        schemaName: state.default_schema_name ?? Object.keys(state.sources)[0] ?? config.name,
        pipelineName: config.name,
        tables: [],
        state: Option.some({
          version: state._state_version,
          engineVersion: state._state_engine_version,
          pipelineName: config.name,
          state: blob,
          versionHash: state._version_hash ?? "",
          createdAt: new Date()
        }),
        expected: commit.expected,
        dropTables: commit.dropTables.filter((table) => !table.startsWith("_dlt")),
        keepStateVersions: config.keepStateVersions
      })
      yield* workingDir.writeState({ ...state, _local: { ...state._local, first_run: false } })
      return { loadId }
    })
  )

/**
 * The state a drop or restore starts from: the local one or the destination's newest, by the
 * rules of `StateSync.open`, without writing anything locally (a dry run or a refused
 * confirmation must leave the working dir as it was). The caller holds the lock.
 *
 * @since 0.1.0
 */
export const openForChange = (
  pipeline: PipelineShape,
  destination: DestinationShape
): Effect.Effect<
  StateSync.Opened,
  DestinationError | StateBlob.InvalidStateBlob | WorkingDir.CorruptStateFile | WorkingDir.WorkingDirError
> =>
  StateSync.open({ ...pipeline.workingDir, writeState: () => Effect.void }, destination, {
    pipelineName: pipeline.config.name,
    target: targetOf(pipeline),
    restoreFromDestination: true,
    ignoreLocal: false
  })

// ---------------------------------------------------------------------------------------------
// Restoring
// ---------------------------------------------------------------------------------------------

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
  | StateBlob.InvalidStateBlob
  | WorkingDir.CorruptStateFile
  | WorkingDir.WorkingDirError
  | WorkingDir.PipelineLocked
  | NonSerializableStateValue,
  R | Pipeline | Destination
> =>
  Effect.gen(function* () {
    const pipeline = yield* Pipeline
    const destination = yield* Destination
    return yield* Effect.scoped(
      Effect.gen(function* () {
        const { config, workingDir } = pipeline
        const target = targetOf(pipeline)
        yield* workingDir.lock
        const remote = yield* destination.newestState(target, config.name)
        if (Option.isNone(remote)) {
          return yield* new NoStateInDestination({
            pipelineName: config.name,
            dataset: config.dataset,
            location: destination.location(target)
          })
        }
        const newest = remote.value
        const found = yield* findVersion(destination, target, config.name, newest, options.version)
        const old = yield* StateSync.decodeStored(found, config.name)
        const local = yield* workingDir.readState
        // the new version must pass both the destination's newest and a local state that ran ahead
        // of it (runs with restoreFromDestination off), or the next run would ignore the restore
        const base = Math.max(newest.version, Option.match(local, { onNone: () => 0, onSome: (s) => s._state_version }))
        const hash = yield* PipelineState.versionHash(old)
        const next: PipelineState.PipelineState = {
          ...old,
          _state_version: base + 1,
          _version_hash: hash,
          _local: Option.match(local, { onNone: () => old._local, onSome: (s) => s._local })
        }
        const preview: RestorePreview = {
          pipelineName: config.name,
          dataset: config.dataset,
          location: destination.location(target),
          from: toVersion(found),
          newest: toVersion(newest),
          nextVersion: next._state_version
        }
        if (hash === newest.versionHash) return { _tag: "AlreadyNewest", preview } as const
        if (options.dryRun === true) return { _tag: "DryRun", preview } as const
        if (options.confirm !== undefined && !(yield* options.confirm(preview))) {
          return { _tag: "Cancelled", preview } as const
        }
        const { loadId } = yield* commitVersion(pipeline, destination, {
          state: next,
          expected: { _tag: "Newest", newest: Option.some({ version: newest.version, hash: newest.versionHash }) },
          newestLoadId: Option.some(newest.loadId),
          dropTables: []
        })
        return {
          _tag: "Restored",
          preview,
          version: next._state_version,
          versionHash: hash,
          loadId
        } as const
      })
    )
  })
