/**
 * The built-in destinations and the service they provide.
 *
 * @since 0.1.0
 */
export * from "./Destination.js"
export { layer as sqlite, memoryLayer as memory } from "./sqlite.js"
export type { SqliteOptions } from "./sqlite.js"
