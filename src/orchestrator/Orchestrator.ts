/**
 * The orchestrator: runs the groups of a decomposed source (see `Source.decompose`) as one run
 * with a run id, and returns a summary per group. Two layers, swappable:
 *
 * - {@link layerInProcess}: every group in this process, at once (today's concurrency);
 * - `ClusterOrchestrator.layer`: every group a durable workflow on a cluster of runner processes
 *   (@effect/cluster + @effect/workflow), surviving the crash of a runner.
 *
 * Exactly once per group: a group's commit records `(pipeline, run id, group)` with its summary in
 * `_pipestate_group_runs`, in the same transaction as its rows and state. A group that finds its
 * record (a rerun of the run id, or a group re-executed after a crash) returns the recorded
 * summary (`recorded: true`) without loading again. `Pipeline.run` stays the simple path.
 *
 * @example
 * ```ts
 * const job = { pipeline: { name: "shop_pipeline", dataset: "shop" }, groups: yield* Source.decompose(shop) }
 * const results = yield* Orchestrator.run({ runId: "2026-11-29" }).pipe(
 *   Effect.provide(Orchestrator.layerInProcess(job)),
 *   Effect.provide(Destination.postgres({ url })),
 *   Effect.provide(NodeContext.layer)
 * )
 * for (const r of results) console.log(r.group, r.runner, r.summary.tables)
 * ```
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { Cause, Context, Effect, Layer, Option, Schema } from "effect"
import { Destination } from "../destination/Destination.js"
import { GroupRun } from "../internal/pipeline/GroupRun.js"
import * as Pipeline from "../pipeline/Pipeline.js"
import type { SourceGroup } from "../pipeline/Source.js"

/**
 * A group's `Pipeline.LoadSummary` as a Schema (it travels between processes and is recorded).
 *
 * @since 0.1.0
 */
export const LoadSummary = Schema.Struct({
  pipelineName: Schema.String,
  dataset: Schema.String,
  destination: Schema.String,
  loadId: Schema.NullOr(Schema.String),
  firstRun: Schema.Boolean,
  origin: Schema.Literal(
    "local",
    "destination",
    "new",
    "reset-dataset-dropped",
    "target-changed-destination",
    "target-changed-new"
  ),
  tables: Schema.Record({ key: Schema.String, value: Schema.Number }),
  stateVersionBefore: Schema.Number,
  stateVersionAfter: Schema.Number,
  stateHashAfter: Schema.String,
  stateChanged: Schema.Boolean
})

/**
 * What one group of a run did.
 *
 * @since 0.1.0
 */
export const GroupResult = Schema.Struct({
  runId: Schema.String,
  group: Schema.String,
  /** who loaded the group: the runner's label (e.g. `host:port` of a cluster runner, or `pid 123`) */
  runner: Schema.String,
  /** the group had committed before (a rerun, or a re-execution after a crash): nothing was loaded now */
  recorded: Schema.Boolean,
  summary: LoadSummary
})

/**
 * @since 0.1.0
 */
export type GroupResult = typeof GroupResult.Type

/**
 * A group of a run failed; nothing of that group was committed (its rows and state commit together
 * with its record, or not at all). Other groups of the run are not affected. In process, running
 * the same run id again runs only the groups that did not commit; on the cluster a failed group's
 * workflow keeps its failure, so run the failed groups under a new run id.
 *
 * @since 0.1.0
 */
export class GroupFailed extends Schema.TaggedError<GroupFailed>()("GroupFailed", {
  runId: Schema.String,
  group: Schema.String,
  runner: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `run ${this.runId}: group ${this.group} failed on ${this.runner}: ${this.reason.replace(/\.$/, "")}. Nothing of the group was committed; run it again (in process: the same run id; on a cluster: a new run id with only the failed groups).`
  }
}

/**
 * What runners deploy: the pipeline every group loads through (one name, one dataset) and the
 * groups of the decomposed source. Each group loads with its own working directory,
 * `<pipelinesDir>/groups/<group>/<name>`, so groups run side by side in one process; the
 * destination is addressed as the pipeline's (an embedded destination's default file is the one
 * `Pipeline.run` of the pipeline uses).
 *
 * @since 0.1.0
 */
export interface Job<E = never, R = never> {
  readonly pipeline: Pipeline.PipelineConfig
  readonly groups: ReadonlyArray<SourceGroup<E, R>>
}

/**
 * A run to perform: its id (stable across retries: a rerun of a finished id is a no-op) and the
 * groups to run (default: every group of the job).
 *
 * @since 0.1.0
 */
export interface RunRequest {
  readonly runId: string
  readonly groups?: ReadonlyArray<string>
}

/**
 * @since 0.1.0
 */
export interface OrchestratorShape {
  /** runs the groups of a run and returns their results in the order asked; fails with the first failed group */
  readonly run: (request: RunRequest) => Effect.Effect<ReadonlyArray<GroupResult>, GroupFailed>
}

/**
 * @since 0.1.0
 */
export class Orchestrator extends Context.Tag("pipestate/Orchestrator")<Orchestrator, OrchestratorShape>() {}

/**
 * Runs a run through the orchestrator in context.
 *
 * @since 0.1.0
 */
export const run = (request: RunRequest): Effect.Effect<ReadonlyArray<GroupResult>, GroupFailed, Orchestrator> =>
  Effect.flatMap(Orchestrator, (o) => o.run(request))

/**
 * The names of the groups a request runs (every group of the job by default).
 *
 * @since 0.1.0
 */
export const groupNames = <E, R>(job: Job<E, R>, request: RunRequest): ReadonlyArray<string> =>
  request.groups ?? job.groups.map((g) => g.name)

const decodeRecord = Schema.decodeUnknownEither(Schema.parseJson(GroupResult))
const encodeRecord = Schema.encodeSync(Schema.parseJson(GroupResult))

/**
 * Runs one group of a run here, exactly once: returns the recorded result when the group's record
 * is in the destination, else loads the group (`Pipeline.run` of its source, recording the
 * result in the same transaction). A commit that fails because the record appeared meanwhile (the
 * same group run elsewhere) returns that record. Needs what the group's source needs, the
 * destination, and a file system (the group's working directory).
 *
 * @since 0.1.0
 */
export const runGroup = <E, R>(
  job: Job<E, R>,
  runId: string,
  groupName: string,
  runner: string
): Effect.Effect<GroupResult, GroupFailed, R | Destination | FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function* () {
    const failed = (reason: string) => new GroupFailed({ runId, group: groupName, runner, reason })
    const group = job.groups.find((g) => g.name === groupName)
    if (group === undefined) {
      return yield* failed(
        `this runner's job has no group named ${JSON.stringify(groupName)}; its groups are ${job.groups.map((g) => JSON.stringify(g.name)).join(", ")} (deploy the same source code to every runner and the driver)`
      )
    }
    const destination = yield* Destination
    const readGroupRun = destination.readGroupRun
    if (readGroupRun === undefined) {
      return yield* failed(
        `destination ${destination.name} does not record group runs (readGroupRun), so groups cannot run exactly once`
      )
    }
    const path = yield* Path.Path
    const base = yield* Pipeline.make(job.pipeline)
    const own = yield* Pipeline.make({
      ...job.pipeline,
      pipelinesDir: path.join(base.config.pipelinesDir, "groups", encodeURIComponent(group.name))
    })
    // the group addresses the destination as its pipeline does: an embedded destination's default
    // file is the pipeline's (`<pipelinesDir>/<name>/<dataset>.sqlite`), not one per group
    const pipeline: Pipeline.PipelineShape = {
      ...own,
      workingDir: { ...own.workingDir, datasetDir: base.workingDir.datasetDir }
    }
    const target = { dataset: pipeline.config.dataset, pipelineDir: pipeline.workingDir.datasetDir }
    const recorded = Effect.flatMap(readGroupRun(target, pipeline.config.name, runId, group.name), (row) =>
      Option.match(row, {
        onNone: () => Effect.succeed(Option.none<GroupResult>()),
        onSome: (r) => Effect.map(decodeRecord(r.summary), (result) => Option.some({ ...result, recorded: true }))
      })
    )
    const before = yield* recorded
    if (Option.isSome(before)) return before.value
    const load = Pipeline.run(group.source).pipe(
      Effect.provideService(Pipeline.Pipeline, pipeline),
      Effect.provideService(GroupRun, {
        runId,
        group: group.name,
        encode: (summary) => encodeRecord({ runId, group: group.name, runner, recorded: false, summary })
      }),
      Effect.map((summary): GroupResult => ({ runId, group: group.name, runner, recorded: false, summary }))
    )
    return yield* Effect.catchAllCause(load, (cause) =>
      // committed elsewhere meanwhile: the record says what the group did
      Effect.flatMap(Effect.orElseSucceed(recorded, Option.none), (after) =>
        Option.isSome(after) ? Effect.succeed(after.value) : Effect.fail(failed(reasonOf(cause)))
      )
    )
  }).pipe(
    Effect.catchAll((error) =>
      error instanceof GroupFailed
        ? Effect.fail(error)
        : Effect.fail(new GroupFailed({ runId, group: groupName, runner, reason: messageOf(error) }))
    ),
    Effect.withSpan("pipestate.group", {
      attributes: { "pipestate.run_id": runId, "pipestate.group": groupName, "pipestate.runner": runner }
    })
  )

const messageOf = (error: unknown): string =>
  typeof error === "object" && error !== null && typeof (error as { message?: unknown }).message === "string"
    ? (error as { message: string }).message
    : String(error)

const reasonOf = (cause: Cause.Cause<unknown>): string =>
  Option.match(Cause.failureOption(cause), {
    onSome: messageOf,
    onNone: () => Cause.pretty(cause)
  })

/**
 * The in-process orchestrator: every group of a run in this process, up to `concurrency` at once
 * (default: all). Their commits merge (disjoint resource slots); a group that conflicts fails
 * with `GroupFailed` naming the overlapping state paths.
 *
 * @since 0.1.0
 */
export const layerInProcess = <E, R>(
  job: Job<E, R>,
  options: { readonly concurrency?: number; readonly runner?: string } = {}
): Layer.Layer<Orchestrator, never, R | Destination | FileSystem.FileSystem | Path.Path> =>
  Layer.effect(
    Orchestrator,
    Effect.map(Effect.context<R | Destination | FileSystem.FileSystem | Path.Path>(), (context) => ({
      run: (request: RunRequest) =>
        Effect.forEach(
          groupNames(job, request),
          (group) => runGroup(job, request.runId, group, options.runner ?? `pid ${process.pid}`),
          { concurrency: options.concurrency ?? "unbounded" }
        ).pipe(Effect.provide(context))
    }))
  )
