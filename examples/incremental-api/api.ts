/**
 * A local paged REST API of items that change over time, deterministic from a seed, for the
 * incremental example, its tests and the fault soak.
 *
 * `GET /items?updated_since=<ISO 8601>` → `{ "items": [...], "next_page": "<url>" | null }`: the
 * items with `updated_at >= updated_since`, ordered by `(updated_at, id)`, `pageSize` a page.
 *
 * `next_page` is built so that a walk through the pages is exact even while the items change:
 *
 * - it carries a keyset (`after`: the `(updated_at, id)` of the page's last item), not a page
 *   number. An item updated during the walk moves to the end of the order instead of shifting the
 *   rest by one, so no item is skipped. (With page numbers, an item of page 1 moving to the end
 *   hides the first item of page 2, and an incremental cursor then moves past it for good.)
 * - it pins the walk to the newest change when it began (`until`): changes made during the walk
 *   are left for the next one, which finds them past its cursor. Without the pin, a walk could
 *   chase a stream of changes forever.
 *
 * The data model is pure (`initialCatalog`, `mutateCatalog`), so the exact rows a destination must
 * hold after N mutations can be computed without a server (`expectedItems`).
 */
import { createServer } from "node:http"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { ServeError } from "@effect/platform/HttpServerError"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Option, Ref, Schema, type Scope } from "effect"

/** An item as the API serves it. */
export const Item = Schema.Struct({
  id: Schema.Int,
  name: Schema.String,
  status: Schema.Literal("open", "pending", "closed"),
  amount: Schema.Int,
  /** how many times the item changed since it was created */
  version: Schema.Int,
  /** ISO 8601, UTC, millisecond precision: `2024-01-01T00:00:07.000Z` */
  updated_at: Schema.String
})
export type Item = typeof Item.Type

/** A page of `GET /items`. */
export const ItemsPage = Schema.Struct({ items: Schema.Array(Item), next_page: Schema.NullOr(Schema.String) })
export type ItemsPage = typeof ItemsPage.Type

/** The API's data at one moment. */
export interface Catalog {
  readonly seed: number
  /** by id */
  readonly items: ReadonlyArray<Item>
  /** seconds after `EPOCH` of the newest change */
  readonly clock: number
  /** mutations applied so far */
  readonly step: number
}

/** What one mutation did. */
export interface Mutation {
  readonly step: number
  readonly updatedAt: string
  readonly created: ReadonlyArray<number>
  readonly updated: ReadonlyArray<number>
}

/** the instant of clock 0; every change happens on a whole second after it */
export const EPOCH = Date.parse("2024-01-01T00:00:00.000Z")

const at = (clock: number): string => new Date(EPOCH + clock * 1000).toISOString()

/** mulberry32: a tiny deterministic PRNG, so a seed always gives the same data */
const random = (seed: number) => {
  let state = seed >>> 0
  return (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const ADJECTIVES = ["amber", "brisk", "calm", "dusty", "eager", "faint", "grand", "hollow"]
const NOUNS = ["anchor", "beacon", "candle", "dynamo", "ember", "falcon", "garnet", "harbor"]
const STATUSES = ["open", "pending", "closed"] as const

const pick = <A>(next: () => number, values: ReadonlyArray<A>): A => values[Math.floor(next() * values.length)]!

const newItem = (next: () => number, id: number, clock: number): Item => ({
  id,
  name: `${pick(next, ADJECTIVES)} ${pick(next, NOUNS)}`,
  status: "open",
  amount: 100 + Math.floor(next() * 9900),
  version: 1,
  updated_at: at(clock)
})

/**
 * The data of a fresh API: `count` items, created three to a second (so several items share an
 * `updated_at`, which is what an incremental cursor's boundary handling is for).
 */
export const initialCatalog = (seed: number, count = 25): Catalog => {
  const next = random(seed)
  const items = Array.from({ length: count }, (_, i) => newItem(next, i + 1, Math.floor(i / 3)))
  return { seed, items, clock: Math.floor(Math.max(0, count - 1) / 3), step: 0 }
}

/**
 * One step of changes, all stamped with the same new second: 1 to 3 new items and 1 to 3 updates
 * of existing items (status, amount and version change; `updated_at` moves forward). Pure: the
 * same catalog always gives the same result.
 */
export const mutateCatalog = (catalog: Catalog): readonly [Catalog, Mutation] => {
  const step = catalog.step + 1
  const next = random((Math.imul(catalog.seed, 0x9e3779b1) ^ step) >>> 0)
  const clock = catalog.clock + 1
  const updates = new Set<number>()
  const wanted = Math.min(catalog.items.length, 1 + Math.floor(next() * 3))
  while (updates.size < wanted) updates.add(pick(next, catalog.items).id)
  const items = catalog.items.map((item) =>
    updates.has(item.id)
      ? {
          ...item,
          status: pick(next, STATUSES),
          amount: item.amount + 1 + Math.floor(next() * 500),
          version: item.version + 1,
          updated_at: at(clock)
        }
      : item
  )
  const lastId = catalog.items.at(-1)?.id ?? 0
  const created = Array.from({ length: 1 + Math.floor(next() * 3) }, (_, i) => newItem(next, lastId + i + 1, clock))
  return [
    { seed: catalog.seed, items: [...items, ...created], clock, step },
    { step, updatedAt: at(clock), created: created.map((i) => i.id), updated: [...updates].sort((a, b) => a - b) }
  ]
}

/** The items after `mutations` steps: exactly the rows a complete incremental load must hold. */
export const expectedItems = (options: {
  readonly seed: number
  readonly mutations: number
  readonly initialItems?: number
}): ReadonlyArray<Item> => {
  let catalog = initialCatalog(options.seed, options.initialItems)
  for (let i = 0; i < options.mutations; i++) catalog = mutateCatalog(catalog)[0]
  return catalog.items
}

/** `(updated_at, id)` order: the order pages are served in */
const compareKeyset = (a: { readonly updated_at: string; readonly id: number }, b: typeof a): number =>
  Date.parse(a.updated_at) - Date.parse(b.updated_at) || a.id - b.id

/**
 * One page of `GET /items`: the items updated in `[updatedSince, until]` that come after the keyset
 * `after` (the previous page's last item), and the last item served when more follow.
 */
export const page = (
  items: ReadonlyArray<Item>,
  options: {
    readonly updatedSince: number
    readonly until: number
    readonly after: Option.Option<Pick<Item, "updated_at" | "id">>
    readonly pageSize: number
  }
): { readonly items: ReadonlyArray<Item>; readonly last: Option.Option<Item> } => {
  const matching = items
    .filter((item) => {
      const updated = Date.parse(item.updated_at)
      return updated >= options.updatedSince && updated <= options.until
    })
    .filter((item) =>
      Option.match(options.after, { onNone: () => true, onSome: (after) => compareKeyset(item, after) > 0 })
    )
    .sort(compareKeyset)
  const served = matching.slice(0, options.pageSize)
  return { items: served, last: matching.length > served.length ? Option.fromNullable(served.at(-1)) : Option.none() }
}

/** How to start the API. */
export interface IncrementalApiOptions {
  readonly seed: number
  /** items before the first mutation (default 25) */
  readonly initialItems?: number
  /** items a page (default 10) */
  readonly pageSize?: number
}

/** A running API. */
export interface IncrementalApiService {
  /** e.g. `http://127.0.0.1:49152`; append `/items?updated_since=...` */
  readonly baseUrl: string
  /** applies the next step of changes (atomically: a page never sees half a step) */
  readonly mutate: Effect.Effect<Mutation>
  /** the items now, by id: what the destination must hold after a complete load */
  readonly items: Effect.Effect<ReadonlyArray<Item>>
  /** mutations applied so far */
  readonly mutations: Effect.Effect<number>
  /** `GET /items` requests served so far */
  readonly requests: Effect.Effect<number>
}

const Instant = Schema.DateFromString.pipe(Schema.filter((d) => !Number.isNaN(d.getTime())))
const Query = Schema.Struct({
  updated_since: Schema.optional(Instant),
  until: Schema.optional(Instant),
  after: Schema.optional(Schema.String)
})

const parseKeyset = (text: string): Option.Option<Pick<Item, "updated_at" | "id">> => {
  const [updatedAt = "", id = ""] = text.split(",")
  return Number.isNaN(Date.parse(updatedAt)) || !/^\d+$/.test(id)
    ? Option.none()
    : Option.some({ updated_at: updatedAt, id: Number(id) })
}

/** Starts the API on 127.0.0.1 (an ephemeral port) for the lifetime of the scope. */
export const makeIncrementalApi = (
  options: IncrementalApiOptions
): Effect.Effect<IncrementalApiService, ServeError, Scope.Scope> =>
  Effect.gen(function* () {
    const pageSize = Math.max(1, options.pageSize ?? 10)
    const catalog = yield* Ref.make(initialCatalog(options.seed, options.initialItems))
    const requests = yield* Ref.make(0)
    const server = yield* NodeHttpServer.make(() => createServer(), { host: "127.0.0.1", port: 0 })
    const baseUrl = `http://127.0.0.1:${server.address._tag === "TcpAddress" ? server.address.port : 0}`

    const badRequest = (message: string) => HttpServerResponse.json({ error: message }, { status: 400 })

    const router = HttpRouter.empty.pipe(
      HttpRouter.get(
        "/items",
        Effect.gen(function* () {
          yield* Ref.update(requests, (n) => n + 1)
          const query = yield* Effect.either(HttpServerRequest.schemaSearchParams(Query))
          if (query._tag === "Left") return yield* badRequest("updated_since must be an ISO 8601 instant")
          const { updated_since, until, after } = query.right
          const keyset = after === undefined ? Option.none() : parseKeyset(after)
          if (after !== undefined && Option.isNone(keyset)) return yield* badRequest("after: not a page token")
          const current = yield* Ref.get(catalog)
          const since = updated_since?.getTime() ?? EPOCH
          // the first page pins the walk to the newest change now; the next pages keep the pin
          const pin = until?.getTime() ?? Date.parse(at(current.clock))
          const { items, last } = page(current.items, { updatedSince: since, until: pin, after: keyset, pageSize })
          const next = Option.map(last, (item) => {
            const url = new URL("/items", baseUrl)
            url.searchParams.set("updated_since", new Date(since).toISOString())
            url.searchParams.set("until", new Date(pin).toISOString())
            url.searchParams.set("after", `${item.updated_at},${item.id}`)
            return url.href
          })
          return yield* HttpServerResponse.json({ items, next_page: Option.getOrNull(next) } satisfies ItemsPage)
        })
      )
    )
    yield* server.serve(router)

    return {
      baseUrl,
      mutate: Ref.modify(catalog, (current) => {
        const [next, mutation] = mutateCatalog(current)
        return [mutation, next]
      }),
      items: Effect.map(Ref.get(catalog), (c) => c.items),
      mutations: Effect.map(Ref.get(catalog), (c) => c.step),
      requests: Ref.get(requests)
    }
  })

/** The running API as a service. */
export class IncrementalApi extends Context.Tag("examples/incremental-api/IncrementalApi")<
  IncrementalApi,
  IncrementalApiService
>() {
  static readonly layer = (options: IncrementalApiOptions): Layer.Layer<IncrementalApi, ServeError> =>
    Layer.scoped(IncrementalApi, makeIncrementalApi(options))
}
