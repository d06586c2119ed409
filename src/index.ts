/**
 * pipestate: pipeline state for TypeScript data loading on Effect. Resources and sources remember
 * values between runs; the state is committed into the destination in the same transaction as the
 * data, and a clean machine restores it from there.
 *
 * The drivers are subpath modules (`pipestate/sqlite`, `pipestate/postgres`, `pipestate/sql`); the
 * `Destination` layers here load them when they are built.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Pipeline from "./pipeline/Pipeline.js"
/** @since 0.1.0 */
export * as Source from "./pipeline/Source.js"
/** @since 0.1.0 */
export * as Resource from "./pipeline/Resource.js"
/** @since 0.1.0 */
export * as ResourceState from "./context/ResourceState.js"
/** @since 0.1.0 */
export * as SourceState from "./context/SourceState.js"
/** @since 0.1.0 */
export * as PipelineContext from "./context/PipelineContext.js"
/** @since 0.1.0 */
export * as Incremental from "./pipeline/Incremental.js"
/** @since 0.1.0 */
export * as Destination from "./destination/index.js"
/** @since 0.1.0 */
export * as History from "./pipeline/History.js"
/** @since 0.1.0 */
export * as Drop from "./pipeline/Drop.js"
/** @since 0.1.0 */
export * as PipestateConfig from "./config/PipestateConfig.js"
/** @since 0.1.0 */
export * as StateValue from "./state/StateValue.js"
/** @since 0.2.0 */
export * as Dataset from "./dataset/Dataset.js"
/** @since 0.1.0 */
export * as Progress from "./pipeline/Progress.js"
/**
 * Runs the groups of a decomposed source exactly once each, in process or on a cluster.
 *
 * @since 0.1.0
 */
export * as Orchestrator from "./orchestrator/Orchestrator.js"
/** the checkpoint option of pipelines and resources, and what a run reports of its checkpoints @since 0.1.0 */
export type { CheckpointOptions, CheckpointSummary } from "./internal/pipeline/Checkpoint.js"
