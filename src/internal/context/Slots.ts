/**
 * Where the source and resource slots live inside the state document: `sources.<source>` and
 * `sources.<source>.resources.<resource>`.
 *
 * @since 0.1.0
 */
import type * as PipelineState from "../state/PipelineState.js"
import type * as StateValue from "../../state/StateValue.js"
import type { Slot, SlotLens } from "./StateSlot.js"

const EMPTY: Slot = {}

const isSlot = (value: StateValue.StateValue | undefined): value is Slot =>
  typeof value === "object" &&
  value !== null &&
  !Array.isArray(value) &&
  (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null)

const pathSegment = (name: string): string =>
  /^[A-Za-z_$][\w$]*$/.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`

/** @since 0.1.0 */
export const sourcePath = (source: string): string => `sources${pathSegment(source)}`

/** @since 0.1.0 */
export const resourcePath = (source: string, resource: string): string =>
  `${sourcePath(source)}.resources${pathSegment(resource)}`

/** @since 0.1.0 */
export const readSource = (state: PipelineState.PipelineState, source: string): Slot => state.sources[source] ?? EMPTY

/** @since 0.1.0 */
export const writeSource = (
  state: PipelineState.PipelineState,
  source: string,
  slot: Slot
): PipelineState.PipelineState => ({ ...state, sources: { ...state.sources, [source]: slot } })

/** @since 0.1.0 */
export const readResources = (state: PipelineState.PipelineState, source: string): Slot => {
  const resources = readSource(state, source).resources
  return isSlot(resources) ? resources : EMPTY
}

/** @since 0.1.0 */
export const readResource = (state: PipelineState.PipelineState, source: string, resource: string): Slot => {
  const slot = readResources(state, source)[resource]
  return isSlot(slot) ? slot : EMPTY
}

/** @since 0.1.0 */
export const writeResource = (
  state: PipelineState.PipelineState,
  source: string,
  resource: string,
  slot: Slot
): PipelineState.PipelineState => {
  const sourceSlot = readSource(state, source)
  return writeSource(state, source, {
    ...sourceSlot,
    resources: { ...readResources(state, source), [resource]: slot }
  })
}

/** Removes a resource's slot entirely (used for `replace` resources and `drop`). @since 0.1.0 */
export const removeResource = (
  state: PipelineState.PipelineState,
  source: string,
  resource: string
): PipelineState.PipelineState => {
  const resources = readResources(state, source)
  if (!Object.hasOwn(resources, resource)) return state
  const { [resource]: _removed, ...rest } = resources
  return writeSource(state, source, { ...readSource(state, source), resources: rest })
}

/** @since 0.1.0 */
export const sourceLens = (source: string): SlotLens => ({
  path: sourcePath(source),
  read: (state) => readSource(state, source),
  write: (state, slot) => {
    const resources = readSource(state, source).resources
    return writeSource(state, source, resources === undefined ? slot : { ...slot, resources })
  },
  reserved: ["resources"]
})

/** @since 0.1.0 */
export const resourceLens = (source: string, resource: string): SlotLens => ({
  path: resourcePath(source, resource),
  read: (state) => readResource(state, source, resource),
  write: (state, slot) => writeResource(state, source, resource, slot),
  reserved: []
})
