/**
 * The destination service: where rows and state are committed together. Built-in layers live in
 * `sqlite`, `postgres` and `memory`; users provide their own layer for any other store.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Destination, Pipeline } from "pipestate"
 *
 * const program = Pipeline.run(source).pipe(
 *   Effect.provide(Pipeline.layer({ name: "chess_pipeline", dataset: "chess_data" })),
 *   Effect.provide(Destination.sqlite())
 * )
 * ```
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql"
import { Context, type Effect, type Option, Schema, type Scope } from "effect"
import type { ColumnType, RowBatch, TableSchema } from "./TableSchema.js"

/**
 * A destination operation failed: unreachable server, SQL error, I/O error.
 *
 * @since 0.1.0
 */
export class DestinationError extends Schema.TaggedError<DestinationError>()("DestinationError", {
  destination: Schema.String,
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `destination ${this.destination}: ${this.operation} failed: ${this.reason}`
  }
}

/**
 * The destination's newest state for a pipeline is not the one this run started from: another run
 * committed in between. Nothing of this run was written.
 *
 * @since 0.1.0
 */
export class StateConflict extends Schema.TaggedError<StateConflict>()("StateConflict", {
  pipelineName: Schema.String,
  dataset: Schema.String,
  expectedVersion: Schema.NullOr(Schema.Number),
  expectedHash: Schema.NullOr(Schema.String),
  foundVersion: Schema.NullOr(Schema.Number),
  foundHash: Schema.NullOr(Schema.String)
}) {
  override get message(): string {
    const show = (v: number | null, h: string | null) =>
      v === null ? "no state" : `version ${v} (hash ${h ?? "none"})`
    return `pipeline ${this.pipelineName}: the state in dataset ${this.dataset} moved from ${show(this.expectedVersion, this.expectedHash)}, which this run started from, to ${show(this.foundVersion, this.foundHash)} committed by another run; nothing was written. Run again to start from the new state.`
  }
}

/**
 * A dataset as a destination addresses it. `pipelineDir` is the pipeline's working directory, where
 * embedded destinations keep their files unless configured otherwise.
 *
 * @since 0.1.0
 */
export interface DatasetTarget {
  readonly dataset: string
  readonly pipelineDir: string
}

/**
 * A row of `_dlt_pipeline_state` joined with its completed load.
 *
 * @since 0.1.0
 */
export interface StoredState {
  readonly version: number
  readonly engineVersion: number
  readonly pipelineName: string
  /** the blob (see `StateBlob`) */
  readonly state: string
  readonly createdAt: Date
  readonly versionHash: string | null
  readonly loadId: string
}

/**
 * The state row a commit writes.
 *
 * @since 0.1.0
 */
export interface StateRow {
  readonly version: number
  readonly engineVersion: number
  readonly pipelineName: string
  readonly state: string
  readonly versionHash: string
  readonly createdAt: Date
}

/**
 * What a commit expects the destination's newest state to be. `Unchecked` skips the check (state
 * sync is off, so the run never read it).
 *
 * @since 0.1.0
 */
export type Expectation =
  | { readonly _tag: "Unchecked" }
  | {
      readonly _tag: "Newest"
      readonly newest: Option.Option<{ readonly version: number; readonly hash: string | null }>
    }

/**
 * Everything a load commits in ONE transaction.
 *
 * @since 0.1.0
 */
export interface LoadCommit {
  readonly loadId: string
  readonly schemaName: string
  readonly pipelineName: string
  /** final schemas of the tables this load writes (tables of `replace` resources are listed even with no rows) */
  readonly tables: ReadonlyArray<TableSchema>
  readonly state: Option.Option<StateRow>
  readonly expected: Expectation
  /** tables dropped in the same transaction (`drop`) */
  readonly dropTables: ReadonlyArray<string>
  /** state rows kept per pipeline; older rows are pruned in the same transaction */
  readonly keepStateVersions: number
}

/**
 * A load in progress: rows are staged as they are extracted and become visible only at `commit`.
 * Closing the scope without a commit discards everything staged.
 *
 * @since 0.1.0
 */
export interface LoadJob {
  readonly write: (table: TableSchema, batch: RowBatch) => Effect.Effect<void, DestinationError>
  readonly commit: (commit: LoadCommit) => Effect.Effect<void, DestinationError | StateConflict>
}

/**
 * A column as it exists in the destination.
 *
 * @since 0.1.0
 */
export interface ExistingColumn {
  readonly name: string
  /** `null` when the destination's type maps to none of ours */
  readonly type: ColumnType | null
}

/**
 * Read access to the loaded data of a dataset (`PipelineContext.dataset`).
 *
 * @since 0.1.0
 */
export interface DatasetAccess {
  readonly name: string
  /** the SQL client behind the dataset, when the destination is SQL */
  readonly sql: Option.Option<SqlClient.SqlClient>
  /** the quoted, qualified name of a table for raw SQL, e.g. `"chess_data"."players_games"` */
  readonly table: (name: string) => string
  readonly tableExists: (name: string) => Effect.Effect<boolean, DestinationError>
  /** every row of a table (small tables; use `execute` to filter) */
  readonly rows: (table: string) => Effect.Effect<ReadonlyArray<Record<string, unknown>>, DestinationError>
  /** runs one SQL statement with positional parameters (`?` on SQLite, `$1` on PostgreSQL) */
  readonly execute: (
    statement: string,
    params?: ReadonlyArray<unknown>
  ) => Effect.Effect<ReadonlyArray<Record<string, unknown>>, DestinationError>
}

/**
 * The destination service.
 *
 * @since 0.1.0
 */
export interface DestinationShape {
  /** short name: `sqlite`, `postgres`, `memory`, or a custom one */
  readonly name: string
  /** dlt's `destination_type`, e.g. `pipestate.destinations.sqlite` */
  readonly type: string
  /** where the data lives, for messages and for identifying remote state; never holds a secret */
  readonly location: (target: DatasetTarget) => string
  readonly datasetExists: (target: DatasetTarget) => Effect.Effect<boolean, DestinationError>
  /** the newest state row of a pipeline whose load completed */
  readonly newestState: (
    target: DatasetTarget,
    pipelineName: string
  ) => Effect.Effect<Option.Option<StoredState>, DestinationError>
  /** state rows of completed loads, newest first */
  readonly stateHistory: (
    target: DatasetTarget,
    pipelineName: string,
    limit: number
  ) => Effect.Effect<ReadonlyArray<StoredState>, DestinationError>
  /** the columns of existing tables among `tables` (absent tables are left out) */
  readonly describeTables: (
    target: DatasetTarget,
    tables: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyMap<string, ReadonlyArray<ExistingColumn>>, DestinationError>
  readonly openLoad: (target: DatasetTarget, spoolDir: string) => Effect.Effect<LoadJob, DestinationError, Scope.Scope>
  readonly dataset: (target: DatasetTarget) => Effect.Effect<DatasetAccess, DestinationError>
  /** drops the dataset with all its tables and state (tests, `devMode` cleanup, full resets) */
  readonly dropDataset: (target: DatasetTarget) => Effect.Effect<void, DestinationError>
}

/**
 * The destination a pipeline loads into.
 *
 * @since 0.1.0
 */
export class Destination extends Context.Tag("pipestate/Destination")<Destination, DestinationShape>() {}
