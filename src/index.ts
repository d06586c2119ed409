/**
 * pipestate: pipeline state for TypeScript data loading on Effect.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Destination from "./destination/index.js"
/** @since 0.1.0 */
export * as TableSchema from "./destination/TableSchema.js"
/** @since 0.1.0 */
export * as PipelineContext from "./context/PipelineContext.js"
/** @since 0.1.0 */
export * as ResourceState from "./context/ResourceState.js"
/** @since 0.1.0 */
export * as SourceState from "./context/SourceState.js"
/** @since 0.1.0 */
export * as StateSlot from "./context/StateSlot.js"
/** @since 0.1.0 */
export * as Normalize from "./pipeline/Normalize.js"
/** @since 0.1.0 */
export * as Pipeline from "./pipeline/Pipeline.js"
/** @since 0.1.0 */
export * as Resource from "./pipeline/Resource.js"
/** @since 0.1.0 */
export * as Source from "./pipeline/Source.js"
/** @since 0.1.0 */
export * as StateSync from "./pipeline/StateSync.js"
/** @since 0.1.0 */
export * as WorkingDir from "./pipeline/WorkingDir.js"
/** @since 0.1.0 */
export * as PipelineState from "./state/PipelineState.js"
/** @since 0.1.0 */
export * as StateBlob from "./state/StateBlob.js"
/** @since 0.1.0 */
export * as StatePath from "./state/StatePath.js"
/** @since 0.1.0 */
export * as StateValue from "./state/StateValue.js"
/** @since 0.1.0 */
export * as Incremental from "./pipeline/Incremental.js"
/** @since 0.1.0 */
export * as PipestateConfig from "./config/PipestateConfig.js"
/** @since 0.1.0 */
export * as Progress from "./pipeline/Progress.js"
/** @since 0.1.0 */
export * as Drop from "./pipeline/Drop.js"
/** @since 0.1.0 */
export * as History from "./pipeline/History.js"
/** @since 0.1.0 */
export * as StateRebase from "./state/StateRebase.js"
/** @since 0.2.0 */
export * as StoredSchema from "./schema/StoredSchema.js"
/** @since 0.2.0 */
export * as VersionRow from "./schema/VersionRow.js"
/** @since 0.2.0 */
export * as Naming from "./schema/Naming.js"
/** @since 0.2.0 */
export * as DataType from "./schema/DataType.js"
