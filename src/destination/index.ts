/**
 * The built-in destinations and the service they provide.
 *
 * @since 0.1.0
 */
export * from "./Destination.js"
export type { PostgresOptions } from "./postgres.js"
export { layer as postgres } from "./postgres.js"
export type { SqliteOptions } from "./sqlite.js"
export { layer as sqlite, memoryLayer as memory } from "./sqlite.js"
