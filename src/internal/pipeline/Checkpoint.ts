/**
 * Checkpoints: a long extract commits as it goes, exactly once, and a run killed after checkpoint
 * k starts again from checkpoint k.
 *
 * With `checkpoint: { rows, every }` (pipeline-wide in the pipeline's config, or per resource in its
 * options, which wins), a run commits whenever a resource has extracted at least `rows` records, or
 * `every` has passed, since the previous checkpoint. Each checkpoint is ONE transaction through the
 * same door as a run's commit (`Session.commit`: the rows staged since the previous checkpoint, a
 * `_dlt_loads` row, a `_dlt_pipeline_state` row, the stored schema, with the same optimistic check),
 * and the local `state.json` follows it. Each checkpoint stages into a spool of its own, removed
 * once it committed: the spool on disk holds at most one checkpoint interval, also for the rows
 * that wait for the final commit on a destination with hold tables (below). Every load of such a
 * run is recorded in `_pipestate_loads` with the run's id (the load id of its first load), its
 * checkpoint number and whether it was the final commit; `pipestate pipeline <name> history` shows
 * them.
 *
 * ## The invariant
 *
 * A checkpoint commits a state change only together with (or after) every record produced before
 * that change. No checkpoint holds a state that claims records it does not hold.
 *
 * How: the resource's state slot is snapshotted each time its stream hands pipestate a chunk — a
 * state change made before a record is emitted travels with that record. Records are then held per
 * resource until the resource's slot changes again: that point, between the last record of one
 * snapshot and the first of the next, is a *cut*. A checkpoint commits, for every resource, exactly
 * the records up to its last cut, with the slot snapshot of that cut; records after it (a page
 * half-way through, records regrouped by `batchSize`, the chunks of another resource that is
 * mid-page) stay for the next checkpoint. So:
 *
 * - pages need not line up with batches or with `rows`: a checkpoint falls on the first cut after
 *   the threshold, so with pages of 5,000 and `rows: 12_000` it commits after pages 3, 6, 9, …
 * - several resources run concurrently: each resource's slot is committed as of its own last
 *   committed record, whatever the others are doing.
 * - source-level state (`SourceState`) and every state change made after a resource's last record
 *   are committed by the run's final commit only; checkpoints keep the source state as last
 *   committed. A resource that must resume from a checkpoint keeps its position in resource state.
 * - the resource updates its state *before* emitting the records the change covers (a page's next
 *   cursor, then the page's records; an archive marked as read, then its records), as
 *   `Incremental` (for rows in its declared `rowOrder`) and the list-of-archives pattern do. A
 *   resource's stream can ask to keep its rows and state for the final commit (`CheckpointHold`):
 *   `Incremental` does for rows in no promised order, whose cursor would claim rows still to come. A resource that updates state only after its
 *   records may load the records of its last unit once more after a kill (they were committed with
 *   the state before the change).
 * - snapshots are taken where the resource's stream hands chunks to pipestate. Operators inside the
 *   resource's own stream that hold records back AFTER a state change (`Stream.buffer`, a
 *   `Stream.rechunk` or a concurrent `mapEffect` downstream of the state update) let the state run
 *   ahead of the records it describes; keep them upstream of the state update.
 * - a resource whose state does not change for 10 batches (`batchSize`) in a row (no cut: a
 *   stateless resource, a unit larger than that) holds its further records and its state for the
 *   final commit, as `replace` resources do (below). So do the records of a resource that did not
 *   change its state at all in the run: a later run could not skip them, so committing them early
 *   would load them twice after a kill.
 *
 * ## `replace` resources, and rows held for the final commit
 *
 * The rows and the state of `replace` resources wait for the run's final commit, and so do the held
 * rows of resources without a cut. Where the rows wait depends on the destination:
 *
 * - with hold tables (`DestinationShape.holdTable` and `Transaction.holds`; SQLite and PostgreSQL):
 *   they stage with the checkpoint interval, and each checkpoint moves them, inside its
 *   transaction, into a hold table of the dataset per table and run
 *   (`_pipestate_hold_<hash of pipeline, run id, table>_<table>`, recorded in `_pipestate_holds`).
 *   Held records count towards `rows` like cut ones (any point is a cut for them), so a run of only
 *   such resources checkpoints too. The local spool never holds more than one interval. The final
 *   commit moves the held rows into their tables in its one transaction, as the write disposition
 *   says (`replace`: the old rows go; `append`; `merge`: upserted, the last row of a key wins), and
 *   drops the hold tables. A run's first commit drops the hold tables that unfinished runs of the
 *   same pipeline in the same working dir left (never another pipeline's, nor another working
 *   dir's, whose run may be running). Hold tables never enter the stored schema, so
 *   readers (`Dataset`, the CLI, dlt) do not list them.
 * - without: they stage into a spool of their own for the whole run, moved in by the final commit.
 *
 * Either way readers never see a half-replaced table, and a killed run leaves the old table and the
 * old state in place (with hold tables: and its hold tables, dropped by the pipeline's next run).
 *
 * ## What resumes
 *
 * A killed run leaves the state of its last checkpoint, locally and in the destination; the next run
 * starts from it: incremental cursors, the list of archives already read, any resource state.
 * Records after the last checkpoint are extracted again; `replace` resources and source-level state
 * start over.
 *
 * @example
 * ```ts
 * const summary = yield* Pipeline.run(source).pipe(
 *   Effect.provide(Pipeline.layer({ name: "events", checkpoint: { rows: 100_000, every: "5 minutes" } }))
 * )
 * summary.checkpoints // [{ loadId, rows }, …]: one per checkpoint committed before the final commit
 * ```
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { hostname } from "node:os"
import {
  Chunk,
  Clock,
  Duration,
  Effect,
  Either,
  ExecutionStrategy,
  Exit,
  type Layer,
  Option,
  Ref,
  Schema,
  Scope,
  Stream
} from "effect"
import { readResource, readResources, removeResource, writeResource } from "../context/Slots.js"
import type { Slot } from "../context/StateSlot.js"
import { type DestinationError, type Stage, StateConflict } from "../../destination/Destination.js"
import type * as PipelineState from "../state/PipelineState.js"
import * as StateRebase from "../state/StateRebase.js"
import type { TableSchema } from "../destination/TableSchema.js"
import type { NormalizeError, TableNormalizer } from "./Normalize.js"
import type * as Progress from "../../pipeline/Progress.js"
import type { Resource, ResourceServices } from "../../pipeline/Resource.js"
import { CheckpointHold } from "./CheckpointHold.js"
import type * as Commit from "./Commit.js"
import type * as Session from "./Session.js"
import type * as WorkingDir from "./WorkingDir.js"

/**
 * When a run commits as it goes: after at least `rows` records of a resource, or `every` (a
 * `Duration` input: `"5 minutes"`, milliseconds as a number), since the previous checkpoint,
 * at the first point where the resource's state changes after that. Set it pipeline-wide
 * (`Pipeline.layer({ checkpoint })`) or per resource (`Resource.make({ checkpoint })`, which wins).
 *
 * @example
 * ```ts
 * const options: Checkpoint.CheckpointOptions = { rows: 100_000, every: "10 minutes" }
 * ```
 *
 * @since 0.1.0
 */
export interface CheckpointOptions {
  /** records of one resource since the previous checkpoint (at least 1) */
  readonly rows?: number | undefined
  /** time since the previous checkpoint */
  readonly every?: Duration.DurationInput | undefined
}

/**
 * A checkpoint a run committed before its final commit.
 *
 * @since 0.1.0
 */
export interface CheckpointSummary {
  readonly loadId: string
  /** rows the checkpoint loaded, all tables */
  readonly rows: number
  /** rows the checkpoint moved into hold tables, for the run's final commit (see the module documentation) */
  readonly held: number
}

/**
 * What the checkpointed extract committed: the final commit, and the checkpoints before it.
 *
 * @since 0.1.0
 */
export interface Outcome {
  readonly runId: string
  readonly committed: Session.Committed
  readonly checkpoints: ReadonlyArray<CheckpointSummary>
  /** the load id of the run's newest committed load (final or checkpoint), `null` when none */
  readonly lastLoadId: string | null
}

/**
 * Whether checkpoints are on for a resource.
 *
 * @since 0.1.0
 */
export const isEnabled = (options: CheckpointOptions | undefined): boolean =>
  options !== undefined && (options.rows !== undefined || options.every !== undefined)

/**
 * A `checkpoint` option that cannot be used: `rows` not a positive integer, `every` not a duration.
 *
 * @since 0.1.0
 */
export class InvalidCheckpoint extends Schema.TaggedError<InvalidCheckpoint>()("InvalidCheckpoint", {
  /** the resource whose option it is; `null`: the pipeline's */
  resource: Schema.NullOr(Schema.String),
  reason: Schema.String
}) {
  override get message(): string {
    return `the checkpoint option of ${this.resource === null ? "the pipeline" : `resource ${this.resource}`}: ${this.reason}. Use e.g. { rows: 100_000, every: "10 minutes" }`
  }
}

interface Threshold {
  readonly rows: number
  readonly everyMillis: number
}

const threshold = (
  options: CheckpointOptions | undefined,
  resource: string | null
): Either.Either<Threshold | undefined, InvalidCheckpoint> => {
  if (options === undefined || !isEnabled(options)) return Either.right(undefined)
  if (options.rows !== undefined && !(Number.isSafeInteger(options.rows) && options.rows >= 1)) {
    return Either.left(new InvalidCheckpoint({ resource, reason: `rows is ${options.rows}, not a positive integer` }))
  }
  const every = options.every === undefined ? Option.some(Duration.infinity) : Duration.decodeUnknown(options.every)
  if (Option.isNone(every)) {
    return Either.left(new InvalidCheckpoint({ resource, reason: `every is ${String(options.every)}, not a duration` }))
  }
  // Duration reads a negative or NaN number, and "-5 seconds", as zero (0 itself: at every cut)
  const raw: unknown = options.every
  const negative =
    (typeof raw === "number" && !(raw >= 0)) ||
    (typeof raw === "bigint" && raw < 0n) ||
    (typeof raw === "string" && /^\s*-/.test(raw)) ||
    // [seconds, nanos]
    (Array.isArray(raw) && raw.some((part) => typeof part !== "number" || !(part >= 0)))
  if (negative) {
    return Either.left(
      new InvalidCheckpoint({ resource, reason: `every is ${String(raw)}, not a duration of zero or more` })
    )
  }
  return Either.right({ rows: options.rows ?? Infinity, everyMillis: Duration.toMillis(every.value) })
}

interface Interval {
  readonly loadId: string
  readonly stage: Stage
  readonly scope: Scope.CloseableScope
  /** rows staged per table */
  readonly rows: Map<string, number>
  /** rows staged per table for its hold table (destinations with hold tables) */
  readonly held: Map<string, number>
}

/** the hold table of a table whose rows wait for the final commit (destinations with hold tables) */
interface Hold {
  readonly table: string
  readonly name: string
  readonly normalizer: TableNormalizer
  /** a committed checkpoint recorded it */
  committed: boolean
}

interface Lane {
  readonly resource: Resource<unknown, unknown>
  readonly table: string
  readonly normalizer: TableNormalizer
  readonly threshold: Threshold | undefined
  /** rows and state wait for the final commit (`replace`, or no cut for too long) */
  final: boolean
  /** records up to the last cut, not yet staged */
  ready: Array<unknown>
  /** the slot as of the last cut (`undefined`: no cut yet, the committed slot stands) */
  readySlot: Slot | undefined
  /** records after the last cut */
  pending: Array<unknown>
  pendingSlot: Slot | undefined
  /** the slot when the run started: a resource that never changes it has nothing to resume from */
  readonly initialSlot: Slot
  /** records cut since the previous checkpoint */
  sinceRows: number
  /** rows normalized so far (error positions, progress) */
  extracted: number
  /** a checkpoint committed the resource's slot (as of a cut) */
  slotCommitted: boolean
  /** the resource's stream asked to keep its rows and state for the final commit (`CheckpointHold`) */
  holdRequested: boolean
}

/**
 * Everything the checkpointed extract needs from the run.
 *
 * @since 0.1.0
 */
export interface RunInput<E, R> {
  readonly session: Session.Session
  readonly progress: Progress.ProgressShape
  readonly sourceName: string
  readonly plans: ReadonlyArray<{ readonly resource: Resource<unknown, unknown>; readonly table: string }>
  readonly normalizers: ReadonlyMap<string, TableNormalizer>
  /** the run's live state, which the resources write */
  readonly draft: Ref.Ref<PipelineState.PipelineState>
  readonly services: (resource: Resource<unknown, unknown>) => Layer.Layer<ResourceServices, never, never>
  /** the pipeline-wide option; a resource's own wins */
  readonly checkpoint: CheckpointOptions | undefined
  readonly firstLoadId: string
  readonly concurrency: number
  readonly batchSize: number
  /** a resource's stream, as the source typed it */
  readonly stream: (resource: Resource<unknown, unknown>) => Stream.Stream<unknown, E, R | ResourceServices>
}

/**
 * Extracts every resource with checkpoints and commits the run (checkpoints, then the final
 * commit). See the module documentation for the invariant.
 *
 * @since 0.1.0
 */
export const run = <E, R>(
  input: RunInput<E, R>
): Effect.Effect<
  Outcome,
  E | Session.CommitError | DestinationError | WorkingDir.WorkingDirError | NormalizeError | InvalidCheckpoint,
  Exclude<R, ResourceServices> | Scope.Scope
> =>
  Effect.gen(function* () {
    const { session, progress, sourceName, draft, batchSize } = input
    const { destination, datasetTarget, workingDir } = session
    const runScope = yield* Effect.scope
    const runId = input.firstLoadId
    // a unit of records between two state changes longer than this goes to the final commit
    const holdLimit = batchSize * 10

    // the final interval commits after checkpoints opened while it was open: it may not hold the
    // dataset's write transaction open (a stage that writes straight into the tables does)
    const openInterval = (loadId: string, spoolName: string, direct = true) =>
      Effect.gen(function* () {
        const scope = yield* Scope.fork(runScope, ExecutionStrategy.sequential)
        const spool = yield* Scope.extend(workingDir.makeSpool(spoolName), scope)
        const stage = yield* Scope.extend(destination.stage(datasetTarget, spool, { direct }), scope)
        return {
          loadId,
          stage,
          scope,
          rows: new Map<string, number>(),
          held: new Map<string, number>()
        } satisfies Interval
      })

    // a destination with hold tables keeps the rows that wait for the final commit in the dataset,
    // moved there by each checkpoint: the local spool holds one checkpoint interval
    const holdTable = destination.holdTable
    const holding = holdTable !== undefined
    const holds = new Map<string, Hold>()
    /** whether a commit of this run dropped the hold tables of the pipeline's unfinished runs */
    let discarded = false
    // this working dir: it runs one run of the pipeline at a time (its lock), so its other runs'
    // hold tables are leftovers; other working dirs' runs may be running
    const owner = createHash("sha256").update(`${hostname()}\u0000${workingDir.dir}`).digest("hex").slice(0, 16)
    const holdOf = (lane: Lane): Hold => {
      let hold = holds.get(lane.table)
      if (hold === undefined) {
        hold = {
          table: lane.table,
          name: holdTable!({ pipelineName: session.config.name, runId, table: lane.table }),
          normalizer: lane.normalizer,
          committed: false
        }
        holds.set(lane.table, hold)
      }
      return hold
    }
    /** the hold table's schema: the table's columns, appended to in the order held */
    const holdSchema = (hold: Hold): TableSchema => {
      const schema = hold.normalizer.schema()
      return {
        name: hold.name,
        writeDisposition: "append",
        primaryKey: [],
        columns: schema.columns.map((c) => (c.primaryKey ? { ...c, primaryKey: false } : c))
      }
    }

    let current = yield* openInterval(runId, runId)
    // rows held for the final commit: `replace` resources, resources without cuts (a local spool
    // for the whole run, when the destination keeps no hold tables)
    const replacing = !holding && input.plans.some((p) => p.resource.writeDisposition === "replace")
    let finalInterval: Interval | undefined = replacing
      ? yield* openInterval(runId, `${runId}.final`, false)
      : undefined
    const finalStage = Effect.suspend(() =>
      finalInterval !== undefined
        ? Effect.succeed(finalInterval)
        : Effect.tap(openInterval(runId, `${runId}.final`, false), (interval) =>
            Effect.sync(() => {
              finalInterval = interval
            })
          )
    )

    let lastCommitted = session.state
    let lastAt = yield* Clock.currentTimeMillis
    const checkpoints: Array<CheckpointSummary> = []
    const mutex = yield* Effect.makeSemaphore(1)

    const initial = yield* Ref.get(draft)
    yield* threshold(input.checkpoint, null)
    const thresholds = yield* Effect.forEach(input.plans, ({ resource }) =>
      threshold(resource.checkpoint ?? input.checkpoint, resource.checkpoint === undefined ? null : resource.name)
    )
    const lanes: Array<Lane> = input.plans.map(({ resource, table }, i) => ({
      resource,
      table,
      normalizer: input.normalizers.get(table)!,
      threshold: thresholds[i],
      final: resource.writeDisposition === "replace",
      ready: [],
      readySlot: undefined,
      pending: [],
      pendingSlot: undefined,
      initialSlot: readResource(initial, sourceName, resource.name),
      sinceRows: 0,
      extracted: 0,
      slotCommitted: false,
      holdRequested: false
    }))

    const stageRecords = (lane: Lane, records: ReadonlyArray<unknown>, into: Interval, hold?: Hold) =>
      Effect.gen(function* () {
        // held rows carry the run's first load id, as the rows of the final spool do
        const loadId = hold === undefined ? into.loadId : runId
        const counts = hold === undefined ? into.rows : into.held
        for (let start = 0; start < records.length; start += batchSize) {
          const piece = records.slice(start, start + batchSize)
          const batch = yield* lane.normalizer.normalize(piece, loadId, session.rowId, {
            resource: lane.resource.name,
            offset: lane.extracted
          })
          lane.extracted += batch.rows.length
          yield* into.stage.write(hold === undefined ? lane.normalizer.schema() : holdSchema(hold), batch)
          counts.set(lane.table, (counts.get(lane.table) ?? 0) + batch.rows.length)
          yield* progress.rows(lane.resource.name, lane.extracted)
        }
      }).pipe(
        Effect.withSpan("pipestate.normalize", {
          attributes: { "pipestate.resource": lane.resource.name, "pipestate.rows": records.length }
        })
      )

    const append = (target: Array<unknown>, records: ReadonlyArray<unknown>) => {
      for (let i = 0; i < records.length; i++) target.push(records[i])
    }

    /** the records before the current snapshot are complete: they and their slot may commit */
    const cut = (lane: Lane) => {
      lane.sinceRows += lane.pending.length
      append(lane.ready, lane.pending)
      lane.readySlot = lane.pendingSlot
      lane.pending = []
    }

    const flushReady = (lane: Lane) =>
      Effect.suspend(() => {
        if (lane.ready.length === 0) return Effect.void
        const records = lane.ready
        lane.ready = []
        return stageRecords(lane, records, current)
      })

    const schemasOf = (interval: Interval) =>
      [...input.normalizers.values()].filter(
        (n) => (interval.rows.get(n.name) ?? 0) > 0 || (interval === finalInterval && n.writeDisposition === "replace")
      )

    /** the hold tables the interval staged rows for */
    const heldIn = (interval: Interval): Array<Hold> =>
      [...holds.values()].filter((hold) => (interval.held.get(hold.table) ?? 0) > 0)

    /** what a commit does with hold tables: prepare those `interval` staged rows for, release `release` */
    const holdPlan = (interval: Interval, release: ReadonlyArray<Hold>): Commit.HoldPlan => ({
      owner,
      discardOthers: !discarded,
      prepare: heldIn(interval).map((hold) => ({
        table: hold.table,
        hold: holdSchema(hold),
        existing: hold.committed
      })),
      release: release.map((hold) => ({ table: hold.normalizer.schema(), holdTable: hold.name }))
    })

    const checkpoint = Effect.gen(function* () {
      yield* Effect.annotateCurrentSpan("pipestate.checkpoint", checkpoints.length + 1)
      for (const lane of lanes) yield* flushReady(lane)
      let state = lastCommitted
      for (const lane of lanes) {
        if (lane.resource.writeDisposition === "replace" || lane.readySlot === undefined) continue
        state = writeResource(state, sourceName, lane.resource.name, lane.readySlot)
      }
      const written = schemasOf(current)
      const rows = [...current.rows.values()].reduce((a, b) => a + b, 0)
      const held = [...current.held.values()].reduce((a, b) => a + b, 0)
      const staged = heldIn(current)
      const committed = yield* session.commit({
        draft: state,
        schemaName: sourceName,
        loadId: current.loadId,
        stage: current.stage,
        tables: [...written.map((t) => t.schema()), ...staged.map(holdSchema)],
        extractedAt: new Date(yield* Clock.currentTimeMillis),
        schemas: [{ name: sourceName, tables: written.map((t) => t.storedTable()), dropTables: [] }],
        run: {
          runId,
          checkpoint: checkpoints.length + 1,
          final: false,
          ...(holding ? { holds: holdPlan(current, []) } : {})
        }
      })
      lastCommitted = committed.state
      for (const lane of lanes) {
        if (lane.resource.writeDisposition !== "replace" && lane.readySlot !== undefined) lane.slotCommitted = true
      }
      if (committed.loadId !== null) {
        checkpoints.push({ loadId: committed.loadId, rows, held })
        discarded = true
        for (const hold of staged) hold.committed = true
      }
      yield* Scope.close(current.scope, Exit.void)
      const loadId = yield* session.newLoadId
      current = yield* openInterval(loadId, loadId)
      for (const lane of lanes) lane.sinceRows = 0
      lastAt = yield* Clock.currentTimeMillis
    }).pipe(Effect.withSpan("pipestate.checkpoint", { attributes: { "pipestate.run_id": runId } }))

    const resets = input.plans
      .filter((p) => p.resource.writeDisposition === "replace")
      .map((p) => ({ source: sourceName, resource: p.resource.name }))

    /**
     * What the final commit commits: the last checkpoint's state (which holds what other runs
     * committed meanwhile, merged in by the checkpoints' commits) with this run's own changes since
     * it started: its resources' slots and the source-level keys it changed. The run's live state
     * still holds the other units as they were when it started, so committing it as it is would
     * undo the other runs' changes.
     */
    const finalDraft = (live: PipelineState.PipelineState) =>
      Effect.gen(function* () {
        if (checkpoints.length === 0) return { ...lastCommitted, sources: live.sources }
        // the run's base, with the slots its checkpoints committed as they committed them: those
        // are not the other runs' changes
        const committedSlots = readResources(lastCommitted, sourceName)
        let base = session.state
        for (const lane of lanes) {
          if (!lane.slotCommitted) continue
          const name = lane.resource.name
          base = Object.hasOwn(committedSlots, name)
            ? writeResource(base, sourceName, name, readResource(lastCommitted, sourceName, name))
            : removeResource(base, sourceName, name)
        }
        const rebased = StateRebase.rebase({ base, remote: lastCommitted, draft: live, resets })
        if (Either.isLeft(rebased)) {
          const error = rebased.left
          if (error._tag !== "RebaseConflict") return yield* error
          return yield* new StateConflict({
            pipelineName: session.config.name,
            dataset: session.config.dataset,
            expectedVersion: session.state._state_version,
            expectedHash: session.state._version_hash ?? null,
            foundVersion: lastCommitted._state_version,
            foundHash: lastCommitted._version_hash ?? null,
            paths: error.paths,
            checkpoints: checkpoints.length
          })
        }
        return { ...rebased.right.state, _local: lastCommitted._local }
      })

    const due = (lane: Lane) =>
      Effect.map(
        Clock.currentTimeMillis,
        (now) =>
          lane.threshold !== undefined &&
          (lane.sinceRows >= lane.threshold.rows || now - lastAt >= lane.threshold.everyMillis)
      )

    /** records that wait for the final commit: into the lane's hold table at the next checkpoint, or the final spool */
    const holdRecords = (lane: Lane, records: ReadonlyArray<unknown>) =>
      Effect.gen(function* () {
        if (!holding) return yield* stageRecords(lane, records, yield* finalStage)
        yield* stageRecords(lane, records, current, holdOf(lane))
        // held records count towards the checkpoint as cut ones do: any point is a cut for them
        lane.sinceRows += records.length
        if (yield* due(lane)) yield* checkpoint
      })

    const onChunk = (lane: Lane, chunk: Chunk.Chunk<unknown>, slot: Slot) =>
      Effect.gen(function* () {
        const records = Chunk.toReadonlyArray(chunk)
        if (lane.holdRequested && !lane.final) {
          // the records up to the last cut keep their slot; the rest, and the state from here on,
          // wait for the final commit
          yield* flushReady(lane)
          lane.final = true
          const held = lane.pending
          lane.pending = []
          if (held.length > 0) yield* holdRecords(lane, held)
        }
        if (lane.final) return yield* holdRecords(lane, records)
        const isCut = lane.pending.length > 0 && slot !== lane.pendingSlot
        if (isCut) cut(lane)
        append(lane.pending, records)
        lane.pendingSlot = slot
        if (lane.ready.length >= batchSize) yield* flushReady(lane)
        if (isCut && (yield* due(lane))) yield* checkpoint
        if (lane.pending.length > holdLimit) {
          // no cut for too long: the records from here on, and the slot, wait for the final commit
          yield* flushReady(lane)
          lane.final = true
          const held = lane.pending
          lane.pending = []
          yield* holdRecords(lane, held)
        }
      })

    const onEnd = (lane: Lane) =>
      Effect.gen(function* () {
        if (!lane.final && lane.pending.length > 0) {
          if (lane.pendingSlot === lane.initialSlot) {
            // the resource never changed its state: a later run could not skip these records, so
            // they commit with the run's final commit only
            const held = lane.pending
            lane.pending = []
            yield* holdRecords(lane, held)
          } else {
            cut(lane)
          }
        }
        yield* flushReady(lane)
      })

    const extract = (lane: Lane) =>
      input.stream(lane.resource).pipe(
        Stream.provideSomeLayer(input.services(lane.resource)),
        Stream.provideService(CheckpointHold, {
          holdToEnd: Effect.sync(() => {
            lane.holdRequested = true
          })
        }),
        // the slot as of the moment the chunk reaches pipestate travels with the chunk
        Stream.mapChunksEffect((chunk) =>
          Effect.map(Ref.get(draft), (state) =>
            Chunk.of([chunk, readResource(state, sourceName, lane.resource.name)] as const)
          )
        ),
        Stream.runForEach(([chunk, slot]) =>
          Chunk.isEmpty(chunk) ? Effect.void : mutex.withPermits(1)(onChunk(lane, chunk, slot))
        ),
        Effect.zipRight(mutex.withPermits(1)(onEnd(lane))),
        Effect.zipRight(Effect.suspend(() => progress.resourceDone(lane.resource.name, lane.extracted))),
        Effect.tap(() => Effect.annotateCurrentSpan("pipestate.rows", lane.extracted)),
        Effect.withSpan("pipestate.extract", {
          attributes: { "pipestate.resource": lane.resource.name, "pipestate.table": lane.table }
        })
      )

    yield* Effect.forEach(lanes, extract, { concurrency: input.concurrency, discard: true })

    // rows held for the final commit need a stage of their own: what the last interval holds
    // commits first, as one more checkpoint
    if (finalInterval !== undefined && [...current.rows.values()].some((n) => n > 0)) yield* checkpoint
    const last = finalInterval ?? current
    // with hold tables: the tables the last interval staged rows for, every `replace` table (emptied
    // even without rows), every table with held rows, then the hold tables of the last interval;
    // the held rows move in after them
    const written = holding
      ? [...input.normalizers.values()].filter(
          (n) => (last.rows.get(n.name) ?? 0) > 0 || n.writeDisposition === "replace" || holds.has(n.name)
        )
      : schemasOf(last)
    const loaded = [...input.normalizers.values()].filter((t) => t.rows > 0 || t.writeDisposition === "replace")
    yield* progress.phase(session.config.name, "commit")
    const live = yield* Ref.get(draft)
    const committed = yield* session.commit({
      draft: yield* finalDraft(live),
      schemaName: sourceName,
      loadId: current.loadId,
      stage: last.stage,
      tables: [...written.map((t) => t.schema()), ...(holding ? heldIn(last).map(holdSchema) : [])],
      extractedAt: new Date(yield* Clock.currentTimeMillis),
      resets,
      schemas: [{ name: sourceName, tables: loaded.map((t) => t.storedTable()), dropTables: [] }],
      run: {
        runId,
        checkpoint: checkpoints.length + 1,
        final: true,
        ...(holding ? { holds: holdPlan(last, [...holds.values()]) } : {})
      }
    }).pipe(
      // the checkpoints before it stay committed: the conflict says so
      Effect.catchTag("StateConflict", (error) =>
        Effect.fail(
          checkpoints.length === 0 || error.checkpoints !== undefined
            ? error
            : new StateConflict({
                pipelineName: error.pipelineName,
                dataset: error.dataset,
                expectedVersion: error.expectedVersion,
                expectedHash: error.expectedHash,
                foundVersion: error.foundVersion,
                foundHash: error.foundHash,
                ...(error.paths === undefined ? {} : { paths: error.paths }),
                checkpoints: checkpoints.length
              })
        )
      )
    )
    return {
      runId,
      committed,
      checkpoints,
      lastLoadId: committed.loadId ?? checkpoints[checkpoints.length - 1]?.loadId ?? null
    } satisfies Outcome
  })
