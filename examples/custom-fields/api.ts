/**
 * A tiny local stand-in for the Pipedrive API, so the example runs offline and gives the same answer
 * every time. Like Pipedrive, custom fields come back under 40-character hash keys, and the
 * `dealFields` / `personFields` endpoints say what each key is called.
 *
 * - `GET /v1/deals`, `GET /v1/persons` → `{ success: true, data: [...] }`
 * - `GET /v1/dealFields`, `GET /v1/personFields` → `{ success: true, data: [{ key, name, edit_flag }] }`
 *
 * The server counts requests per path, so the example can show that the field mapping is fetched
 * once and then read from the source state.
 */
import { createServer } from "node:http"
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Ref, type Scope } from "effect"
import type { ServeError } from "@effect/platform/HttpServerError"

// custom field keys are opaque hashes; `edit_flag: true` marks a custom (user-defined) field
const QUARTER = "5c4f0b2a9d8e7f6a1b3c5d7e9f0a2b4c6d8e0f1a"
const DEAL_SOURCE = "a1f3e5c7b9d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0"
const LANGUAGE = "0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d"
const PERSON_SOURCE = "7b2e4d6f8a1c3e5b7d9f0a2c4e6b8d0f1a3c5e7b"

const collections: Readonly<Record<string, ReadonlyArray<Record<string, unknown>>>> = {
  dealFields: [
    { key: "id", name: "ID", edit_flag: false },
    { key: "title", name: "Title", edit_flag: false },
    { key: "value", name: "Value", edit_flag: false },
    { key: QUARTER, name: "Expected close quarter", edit_flag: true },
    { key: DEAL_SOURCE, name: "Lead source", edit_flag: true }
  ],
  personFields: [
    { key: "id", name: "ID", edit_flag: false },
    { key: "name", name: "Name", edit_flag: false },
    { key: LANGUAGE, name: "Preferred language", edit_flag: true },
    { key: PERSON_SOURCE, name: "Lead source", edit_flag: true }
  ],
  deals: [
    { id: 1, title: "Acme renewal", value: 12000, [QUARTER]: "2024-Q3", [DEAL_SOURCE]: "Referral" },
    { id: 2, title: "Globex pilot", value: 4500, [QUARTER]: "2024-Q4", [DEAL_SOURCE]: "Website" },
    { id: 3, title: "Initech upsell", value: 800, [QUARTER]: "2025-Q1", [DEAL_SOURCE]: "Cold call" }
  ],
  persons: [
    { id: 1, name: "Ada Lovelace", [LANGUAGE]: "English", [PERSON_SOURCE]: "Conference" },
    { id: 2, name: "Grace Hopper", [LANGUAGE]: "English", [PERSON_SOURCE]: "Referral" },
    { id: 3, name: "Émilie du Châtelet", [LANGUAGE]: "French", [PERSON_SOURCE]: "Website" }
  ]
}

/** A running API. */
export interface PipedriveApiService {
  /** e.g. `http://127.0.0.1:49152`; append `/v1/deals` */
  readonly baseUrl: string
  /** requests served so far, per collection (`deals`, `dealFields`, ...) */
  readonly requests: Effect.Effect<ReadonlyMap<string, number>>
  /** requests served so far to the `*Fields` endpoints */
  readonly fieldRequests: Effect.Effect<number>
}

/** Starts the API on 127.0.0.1 (an ephemeral port) for the lifetime of the scope. */
export const makePipedriveApi: Effect.Effect<PipedriveApiService, ServeError, Scope.Scope> = Effect.gen(function* () {
  const counts = yield* Ref.make<ReadonlyMap<string, number>>(new Map())
  const server = yield* NodeHttpServer.make(() => createServer(), { host: "127.0.0.1", port: 0 })
  const port = server.address._tag === "TcpAddress" ? server.address.port : 0

  const router = HttpRouter.empty.pipe(
    HttpRouter.get(
      "/v1/:collection",
      Effect.gen(function* () {
        const { collection = "" } = yield* HttpRouter.params
        const data = collections[collection]
        if (data === undefined) return yield* HttpServerResponse.json({ success: false }, { status: 404 })
        yield* Ref.update(counts, (m) => new Map(m).set(collection, (m.get(collection) ?? 0) + 1))
        return yield* HttpServerResponse.json({ success: true, data })
      })
    )
  )
  yield* server.serve(router)

  const requests = Ref.get(counts)
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    fieldRequests: Effect.map(requests, (m) =>
      [...m].filter(([path]) => path.endsWith("Fields")).reduce((sum, [, n]) => sum + n, 0)
    )
  }
})

/** The running API as a service. */
export class PipedriveApi extends Context.Tag("examples/custom-fields/PipedriveApi")<
  PipedriveApi,
  PipedriveApiService
>() {
  static readonly layer: Layer.Layer<PipedriveApi, ServeError> = Layer.scoped(PipedriveApi, makePipedriveApi)
}
