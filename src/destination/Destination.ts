/**
 * The destination port: what a store must provide so that pipestate can commit rows and state
 * together. A driver is small — stage rows; run ONE transaction in which pipestate reads the newest
 * state, writes tables, rows, the load row and the state row; read state rows; describe and drop
 * tables. Everything pipestate does on top of it (the optimistic check, the bump rule, retention,
 * history, restore) is written once, in the commit path, for every driver.
 *
 * Built-in drivers: SQLite (`pipestate/sqlite`, the embedded default), PostgreSQL
 * (`pipestate/postgres`), in-memory SQLite for tests, and the SQL driver any other SQL database can
 * build on (`pipestate/sql`). A custom store implements {@link DestinationShape} and is provided as a
 * layer of the {@link Destination} tag (see examples/custom-destination).
 *
 * The system tables follow dlt (dlt/common/schema/utils.py, `_dlt_loads` and
 * `_dlt_pipeline_state`), so dlt and pipestate read each other's datasets.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Destination, Pipeline } from "effect-pipestate"
 *
 * const program = Pipeline.run(source).pipe(
 *   Effect.provide(Pipeline.layer({ name: "chess_pipeline", dataset: "chess_data" })),
 *   Effect.provide(Destination.sqlite())
 * )
 * ```
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Context, type Effect, type Option, Schema, type Scope } from "effect"
import type { ColumnType, RowBatch, TableSchema } from "../internal/destination/TableSchema.js"

/**
 * A destination operation failed: unreachable server, SQL error, I/O error. `cause` keeps the
 * driver's own error for logs and debugging; `reason` is what a user reads (never a password).
 *
 * @since 0.1.0
 */
export class DestinationError extends Schema.TaggedError<DestinationError>()("DestinationError", {
  destination: Schema.String,
  operation: Schema.String,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `destination ${this.destination}: ${this.operation} failed: ${this.reason}`
  }
}

/**
 * The destination's newest state for a pipeline is not the one this run started from: another run
 * committed in between, and the changes cannot be combined. Nothing of this run was written.
 * `paths` names the state locations both runs changed, when the conflict was found by comparing
 * them.
 *
 * @since 0.1.0
 */
export class StateConflict extends Schema.TaggedError<StateConflict>()("StateConflict", {
  pipelineName: Schema.String,
  dataset: Schema.String,
  expectedVersion: Schema.NullOr(Schema.Number),
  expectedHash: Schema.NullOr(Schema.String),
  foundVersion: Schema.NullOr(Schema.Number),
  foundHash: Schema.NullOr(Schema.String),
  paths: Schema.optional(Schema.Array(Schema.String)),
  /** the checkpoints this run committed before its final commit failed (runs with checkpoints) */
  checkpoints: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    const show = (v: number | null, h: string | null) =>
      v === null ? "no state" : `version ${v} (hash ${h ?? "none"})`
    if (this.checkpoints !== undefined && this.checkpoints > 0) {
      const overlap = this.paths === undefined || this.paths.length === 0 ? "" : ` Both changed ${this.paths.join(", ")}.`
      return `pipeline ${this.pipelineName}: another run changed the state in dataset ${this.dataset} while this run went on, and the final commit cannot combine the two (the newest state is ${show(this.foundVersion, this.foundHash)}).${overlap} This run's ${this.checkpoints} checkpoint(s) stay committed with their rows; its final commit wrote nothing. Run again to continue from them.`
    }
    const overlap =
      this.paths === undefined || this.paths.length === 0 ? "" : ` Both runs changed ${this.paths.join(", ")}.`
    return `pipeline ${this.pipelineName}: the state in dataset ${this.dataset} moved from ${show(this.expectedVersion, this.expectedHash)}, which this run started from, to ${show(this.foundVersion, this.foundHash)} committed by another run; nothing was written.${overlap} Run again to start from the new state.`
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
 * A row of `_dlt_pipeline_state` whose load completed (joined with `_dlt_loads`, `status = 0`),
 * without the blob.
 *
 * @since 0.1.0
 */
export interface StateRowInfo {
  readonly version: number
  readonly engineVersion: number
  readonly pipelineName: string
  readonly createdAt: Date
  readonly versionHash: string | null
  readonly loadId: string
  /** the load's `_dlt_loads.schema_version_hash`: the stored schema the load was committed with */
  readonly schemaVersionHash: string | null
}

/**
 * A state row with its blob (see `StateBlob`).
 *
 * @since 0.1.0
 */
export interface StoredState extends StateRowInfo {
  readonly state: string
}

/**
 * The `_dlt_pipeline_state` row a commit inserts, built once by the commit path.
 *
 * @since 0.1.0
 */
export interface StateRow {
  readonly version: number
  readonly engineVersion: number
  readonly pipelineName: string
  /** the blob: base64(zlib(typed JSON)), dlt's format */
  readonly state: string
  readonly createdAt: Date
  readonly versionHash: string
  readonly loadId: string
  /** dlt's `_dlt_id` of the row */
  readonly dltId: string
}

/**
 * The `_dlt_loads` row a commit inserts (`status` 0 = completed).
 *
 * @since 0.1.0
 */
export interface LoadRow {
  readonly loadId: string
  readonly schemaName: string
  readonly status: number
  readonly insertedAt: Date
  readonly schemaVersionHash: string | null
}

/**
 * A `_dlt_version` row: one version of a source's stored schema (dlt's document as JSON text).
 *
 * @since 0.1.0
 */
export interface SchemaRow {
  readonly version: number
  readonly engineVersion: number
  readonly insertedAt: Date
  readonly schemaName: string
  readonly versionHash: string
  /** the schema document (see `StoredSchema`) */
  readonly schema: string
}

/**
 * Which version of a schema to read: the newest (dlt's rule: newest `inserted_at`), or the one with
 * a version hash (what a load's `_dlt_loads.schema_version_hash` names).
 *
 * @since 0.1.0
 */
export type SchemaSelector = { readonly _tag: "Newest" } | { readonly _tag: "Hash"; readonly hash: string }

/**
 * A `_pipestate_group_runs` row: a group of a decomposed source (see `Source.decompose`) that an
 * orchestrated run committed, written in the group's commit transaction with its rows and state.
 * Its key is (pipeline, run id, group): a group of a run commits at most once.
 *
 * @since 0.1.0
 */
export interface GroupRunRow {
  readonly pipelineName: string
  readonly runId: string
  readonly group: string
  /** the load id of the group's rows */
  readonly loadId: string
  /** what the orchestrator returns for the group, as JSON text (see `Orchestrator.GroupResult`) */
  readonly summary: string
  readonly insertedAt: Date
}

/**
 * Rows of a load kept aside while it is extracted; they become visible only through
 * {@link Transaction.writeTables} inside a committed transaction. Closing the scope that made the
 * stage discards what it holds.
 *
 * @since 0.1.0
 */
export interface Stage {
  readonly write: (table: TableSchema, batch: RowBatch) => Effect.Effect<void, DestinationError>
}

/**
 * How a stage may hold its rows (see {@link DestinationShape.stage}).
 *
 * @since 0.3.0
 */
export interface StageOptions {
  /** whether the rows may go straight into their tables inside a transaction open until the commit (default true) */
  readonly direct?: boolean
}

/**
 * What pipestate can do inside the one commit transaction of a driver. Every effect runs in the
 * same transaction; a failure of the body rolls all of it back.
 *
 * @since 0.1.0
 */
export interface Transaction {
  /** state rows of `pipelineName` whose load completed, newest first (at most `limit`) */
  readonly stateRows: (
    pipelineName: string,
    limit: number
  ) => Effect.Effect<ReadonlyArray<StateRowInfo>, DestinationError>
  /** the state row of a completed load, with its blob */
  readonly readState: (
    pipelineName: string,
    loadId: string
  ) => Effect.Effect<Option.Option<StoredState>, DestinationError>
  /** drops tables (never `_dlt*` tables: the caller filters them) */
  readonly dropTables: (tables: ReadonlyArray<string>) => Effect.Effect<void, DestinationError>
  /**
   * Creates or widens each table to its schema, empties `replace` tables, and moves in the rows
   * staged for it: appended, or upserted on the primary key for `merge` (the last staged row of a key
   * wins).
   */
  readonly writeTables: (tables: ReadonlyArray<TableSchema>) => Effect.Effect<void, DestinationError>
  readonly insertLoad: (row: LoadRow) => Effect.Effect<void, DestinationError>
  readonly insertState: (row: StateRow) => Effect.Effect<void, DestinationError>
  /** deletes the pipeline's state rows of loads older than `loadId` (retention) */
  readonly deleteStatesBefore: (pipelineName: string, loadId: string) => Effect.Effect<void, DestinationError>
  /**
   * Retention in one step: deletes the pipeline's state rows of loads older than the `keep`-th newest
   * state row of a completed load (`keep` ≥ 1), as {@link stateRows} with limit `keep` then
   * {@link deleteStatesBefore} with the oldest of them would. Optional: without it the commit does
   * exactly that (reading up to `keep` rows each commit).
   */
  readonly trimStates?: (pipelineName: string, keep: number) => Effect.Effect<void, DestinationError>
  /** a version of a stored schema (`_dlt_version`) */
  readonly readSchema: (
    schemaName: string,
    selector: SchemaSelector
  ) => Effect.Effect<Option.Option<SchemaRow>, DestinationError>
  readonly insertSchema: (row: SchemaRow) => Effect.Effect<void, DestinationError>
  /**
   * Records a committed group of an orchestrated run (`_pipestate_group_runs`, created when first
   * needed); fails when the group of that run is already recorded. Optional: a destination without
   * it cannot run orchestrated groups.
   */
  readonly insertGroupRun?: (row: GroupRunRow) => Effect.Effect<void, DestinationError>
  /**
   * Records which run a load belongs to in `_pipestate_loads` (runs with checkpoints); a driver
   * without it keeps no record, and `history` shows no run ids for it.
   */
  readonly insertRunLoad?: (row: RunLoadRow) => Effect.Effect<void, DestinationError>
  /**
   * Keeps rows that wait for a run's final commit in hold tables of the dataset (see
   * {@link HoldTransaction}). Optional, with {@link DestinationShape.holdTable}: a destination
   * without them keeps those rows in a local spool for the whole run.
   */
  readonly holds?: HoldTransaction
}

/**
 * Which run's rows a hold table keeps for which table: the pipeline, the run (the load id of its
 * first load) and the table the rows are for.
 *
 * @since 0.3.0
 */
export interface HoldKey {
  readonly pipelineName: string
  readonly runId: string
  readonly table: string
}

/**
 * A `_pipestate_holds` row: hold table `holdTable` keeps rows of run `runId` of pipeline
 * `pipelineName` for table `table` until the run's final commit.
 *
 * @since 0.3.0
 */
export interface HoldRow extends HoldKey {
  readonly holdTable: string
  /**
   * The working dir the run runs in (a hash of its host name and path): one working dir runs one
   * run of a pipeline at a time, so its other runs' hold tables are leftovers of runs that died.
   */
  readonly owner: string
  readonly insertedAt: Date
}

/**
 * Hold tables: where the rows of a run with checkpoints that must wait for its final commit (the
 * rows of `replace` resources, and of resources without a cut, see `Checkpoint`) go at each
 * checkpoint, inside that checkpoint's transaction, so the local spool never holds more than one
 * checkpoint interval. A hold table has the columns of its table (and whatever the driver needs to
 * keep the rows' order); it is internal: it never enters a stored schema, so `Dataset`, the CLI and
 * dlt do not list it. Every effect runs inside the commit's transaction.
 *
 * @since 0.3.0
 */
export interface HoldTransaction {
  /**
   * Records `row` in `_pipestate_holds` (created when first needed) and creates the hold table
   * with `table`'s columns when it does not exist; the commit's `writeTables` then moves the staged
   * rows of the hold table in (the caller lists it as an `append` table). `existing`: the run
   * recorded this hold table in an earlier commit; it fails when the record is gone (another run
   * of the pipeline discarded it), since the rows held before are gone with it.
   */
  readonly prepare: (row: HoldRow, table: TableSchema, existing: boolean) => Effect.Effect<void, DestinationError>
  /**
   * Drops the hold tables `pipelineName` recorded under `owner` (the same working dir) in runs other
   * than `runId` — runs of that working dir that were killed or failed before their final commit —
   * and their records; returns the hold tables dropped. Runs of other working dirs may be running:
   * their hold tables stay.
   */
  readonly discardOthers: (
    pipelineName: string,
    runId: string,
    owner: string
  ) => Effect.Effect<ReadonlyArray<string>, DestinationError>
  /**
   * Moves the rows of the hold table into `table` (which `writeTables` created, widened and, for
   * `replace`, emptied in this transaction), in the order they were held: appended, or for `merge`
   * upserted on the primary key (the last held row of a key wins); then drops the hold table and
   * its record. Fails when the record is gone.
   */
  readonly release: (row: HoldRow, table: TableSchema) => Effect.Effect<void, DestinationError>
}

/**
 * A `_pipestate_loads` row: a load committed by a run with checkpoints, its run (the load id of the
 * run's first load), its checkpoint number (1, 2, …) and whether it was the run's final commit.
 *
 * @since 0.1.0
 */
export interface RunLoadRow {
  readonly loadId: string
  readonly runId: string
  readonly checkpoint: number
  readonly final: boolean
  readonly insertedAt: Date
}

/**
 * Options of {@link DestinationShape.transaction}.
 *
 * @since 0.1.0
 */
export interface TransactionOptions {
  /** the pipeline whose commits the transaction serializes (a lock held until it ends) */
  readonly pipelineName: string
  /** the staged rows {@link Transaction.writeTables} moves in; made by this driver's `stage` */
  readonly stage: Option.Option<Stage>
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
 * Raw read access to the loaded data of a dataset, what `Dataset` (`PipelineContext.dataset`,
 * `Pipeline.dataset`) is built on.
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
 * What a store provides (the port). Implement it to load into a store pipestate does not ship; the
 * commit path adds the optimistic check, the version rule, retention and history on top.
 *
 * @since 0.1.0
 */
export interface DestinationShape {
  /** short name: `sqlite`, `postgres`, `memory`, or a custom one (dlt's `destination_name`) */
  readonly name: string
  /**
   * dlt's `destination_type`, e.g. `dlt.destinations.postgres`: the built-in drivers use dlt's own
   * types (SQLite is dlt's `dlt.destinations.sqlalchemy`), so dlt can restore a pipestate state
   */
  readonly type: string
  /**
   * where the data lives, WITHOUT the dataset and never with a secret: the SQLite file or directory,
   * `postgres://user@host:port/database`. The local state records it, so a state committed to one
   * place is never applied to another.
   */
  readonly identity: (target: DatasetTarget) => string
  /** where a dataset lives, for messages (identity plus dataset); never holds a secret */
  readonly location: (target: DatasetTarget) => string
  readonly datasetExists: (target: DatasetTarget) => Effect.Effect<boolean, DestinationError>
  /** state rows of completed loads, newest first (at most `limit`) */
  readonly stateRows: (
    target: DatasetTarget,
    pipelineName: string,
    limit: number
  ) => Effect.Effect<ReadonlyArray<StateRowInfo>, DestinationError>
  /** the state row of a completed load, with its blob */
  readonly readState: (
    target: DatasetTarget,
    pipelineName: string,
    loadId: string
  ) => Effect.Effect<Option.Option<StoredState>, DestinationError>
  /** a version of a stored schema (`_dlt_version`); none when the dataset holds none */
  readonly readSchema: (
    target: DatasetTarget,
    schemaName: string,
    selector: SchemaSelector
  ) => Effect.Effect<Option.Option<SchemaRow>, DestinationError>
  /** the columns of existing tables among `tables` (absent tables are left out) */
  readonly describeTables: (
    target: DatasetTarget,
    tables: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyMap<string, ReadonlyArray<ExistingColumn>>, DestinationError>
  /**
   * a place for a load's rows until its commit; `spoolDir` is the load's private directory. With
   * `direct` (default true) a driver may write the rows straight into their tables inside a
   * transaction it opens at the first row and the stage's commit joins (SQLite): pass `false` for a
   * stage that commits after another stage of the same dataset opened while it was open.
   */
  readonly stage: (
    target: DatasetTarget,
    spoolDir: string,
    options?: StageOptions
  ) => Effect.Effect<Stage, DestinationError, Scope.Scope>
  /**
   * Runs `body` in ONE transaction holding the pipeline's commit lock: everything it writes
   * commits together or not at all.
   */
  readonly transaction: <A, E, R>(
    target: DatasetTarget,
    options: TransactionOptions,
    body: (tx: Transaction) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | DestinationError, R>
  readonly dataset: (target: DatasetTarget) => Effect.Effect<DatasetAccess, DestinationError>
  /**
   * The recorded commit of a group of an orchestrated run (see {@link Transaction.insertGroupRun});
   * none when it did not commit. Optional, with `insertGroupRun`.
   */
  readonly readGroupRun?: (
    target: DatasetTarget,
    pipelineName: string,
    runId: string,
    group: string
  ) => Effect.Effect<Option.Option<GroupRunRow>, DestinationError>
  /** the `_pipestate_loads` rows of `loadIds` (runs with checkpoints); absent when the driver keeps none */
  readonly runLoads?: (
    target: DatasetTarget,
    loadIds: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<RunLoadRow>, DestinationError>
  /**
   * The name of the hold table of `key` (see {@link Transaction.holds}), within the store's
   * identifier limits and distinct for every key. Optional, with `Transaction.holds`: a
   * destination with both keeps the rows that wait for a run's final commit in the dataset; without
   * them, those rows wait in a local spool for the whole run.
   */
  readonly holdTable?: (key: HoldKey) => string
  /** drops the dataset with all its tables and state (tests, `devMode` cleanup, full resets) */
  readonly dropDataset: (target: DatasetTarget) => Effect.Effect<void, DestinationError>
}

/**
 * The destination a pipeline loads into.
 *
 * @since 0.1.0
 */
export class Destination extends Context.Tag("pipestate/Destination")<Destination, DestinationShape>() {}

/** @since 0.1.0 */
export const LOADS_TABLE = "_dlt_loads"
/** @since 0.1.0 */
export const STATE_TABLE = "_dlt_pipeline_state"
/** @since 0.1.0 */
export const VERSION_TABLE = "_dlt_version"
/** @since 0.1.0 */
export const GROUP_RUNS_TABLE = "_pipestate_group_runs"
/** which run each load of a run with checkpoints belongs to (pipestate's own, dlt ignores it) @since 0.1.0 */
export const RUN_LOADS_TABLE = "_pipestate_loads"
/** which hold tables keep which run's rows until its final commit (pipestate's own, dlt ignores it) @since 0.3.0 */
export const HOLDS_TABLE = "_pipestate_holds"
