/**
 * A local stand-in for the chess.com published-data API, serving the shipped games in
 * `data/archives.json` so the demo and tests run offline and give the same answer every time.
 *
 * Only the two endpoints the demo needs exist:
 *
 * - `GET /pub/player/:username/games/archives` → `{ "archives": ["<baseUrl>/pub/player/<u>/games/2024/01", ...] }`
 * - `GET /pub/player/:username/games/:year/:month` → `{ "games": [...] }`
 *
 * Anything else, an unknown player, or a month not (yet) published answers 404 with chess.com's
 * `{ "code": 0, "message": "..." }` body.
 *
 * @since 0.1.0
 */
import { createServer } from "node:http"
import { FileSystem, HttpRouter, HttpServerResponse, Path } from "@effect/platform"
import { NodeContext, NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Option, Ref, Schema, type Scope } from "effect"
import { ChessData, type Game, type MonthlyArchive, type PlayerArchives } from "./schema.js"

/**
 * The data file could not be read or does not match the expected shape.
 *
 * @since 0.1.0
 */
export class ChessApiDataError extends Schema.TaggedError<ChessApiDataError>()("ChessApiDataError", {
  path: Schema.String,
  message: Schema.String
}) {}

/**
 * The HTTP server could not start listening.
 *
 * @since 0.1.0
 */
export class ChessApiListenError extends Schema.TaggedError<ChessApiListenError>()("ChessApiListenError", {
  host: Schema.String,
  port: Schema.Number,
  message: Schema.String
}) {}

/**
 * A `publishMonth` call named a player the data set does not have.
 *
 * @since 0.1.0
 */
export class ChessApiUnknownPlayer extends Schema.TaggedError<ChessApiUnknownPlayer>()("ChessApiUnknownPlayer", {
  username: Schema.String,
  message: Schema.String
}) {}

/**
 * How to start the server.
 *
 * @since 0.1.0
 */
export interface ChessApiServerOptions {
  /**
   * How many of each player's oldest months are published at start; the rest stay hidden (404)
   * until `publishMonth` / `publishNextMonths` reveals them, which is how a demo shows a second
   * run loading only the new archive. Defaults to every month.
   */
  readonly months?: number
  /** Port on 127.0.0.1. Defaults to 0, an ephemeral port, so parallel runs never collide. */
  readonly port?: number
  /** Alternative data file in the `archives.json` format. Defaults to the shipped file. */
  readonly dataPath?: string
}

/**
 * A running server.
 *
 * @since 0.1.0
 */
export interface ChessApiService {
  /** e.g. `http://127.0.0.1:49152`, no trailing slash; append `/pub/player/...`. */
  readonly baseUrl: string
  /** Lower-case usernames in the data set, in file order. */
  readonly players: ReadonlyArray<string>
  /** The URL of one monthly archive, whether or not it is published. */
  readonly archiveUrl: (username: string, year: number, month: number) => string
  /** The archive URLs the server currently lists for a player, oldest first. */
  readonly publishedArchives: (username: string) => Effect.Effect<ReadonlyArray<string>, ChessApiUnknownPlayer>
  /**
   * Publishes the player's next hidden month and returns its archive URL, or `None` when every
   * month is already published.
   */
  readonly publishMonth: (username: string) => Effect.Effect<Option.Option<string>, ChessApiUnknownPlayer>
  /** Publishes one more month for every player that has one left; returns the new archive URLs. */
  readonly publishNextMonths: Effect.Effect<ReadonlyArray<string>>
}

const HOST = "127.0.0.1"

const pad2 = (n: number): string => String(n).padStart(2, "0")

const monthKey = (archive: MonthlyArchive): string => `${archive.year}/${pad2(archive.month)}`

const notFound = (message: string) => HttpServerResponse.json({ code: 0, message }, { status: 404 })

const loadData = (dataPath: string | undefined) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const file =
      dataPath ??
      (yield* path.fromFileUrl(new URL("./data/archives.json", import.meta.url)).pipe(
        Effect.mapError(
          (e) =>
            new ChessApiDataError({
              path: "data/archives.json",
              message: `Cannot locate the data file: ${e.message}`
            })
        )
      ))
    const text = yield* fs.readFileString(file).pipe(
      Effect.mapError(
        (e) =>
          new ChessApiDataError({
            path: file,
            message: `Cannot read ${file} (${e.message}). Regenerate it with: npx tsx examples/chess/data/generate.ts`
          })
      )
    )
    return yield* Schema.decodeUnknown(Schema.parseJson(ChessData))(text).pipe(
      Effect.mapError(
        (e) =>
          new ChessApiDataError({
            path: file,
            message: `${file} is not valid chess data; regenerate it with: npx tsx examples/chess/data/generate.ts\n${e.message}`
          })
      )
    )
  })

/**
 * Starts the server in the current scope and returns its handle; the server stops when the scope
 * closes. Needs a `FileSystem` and `Path` to read the data file (`NodeContext.layer` provides
 * both); `ChessApi.layer` wires that up for you.
 *
 * @since 0.1.0
 */
export const ChessApiServer = (
  options: ChessApiServerOptions = {}
): Effect.Effect<
  ChessApiService,
  ChessApiDataError | ChessApiListenError,
  Scope.Scope | FileSystem.FileSystem | Path.Path
> =>
  Effect.gen(function* () {
    const data = yield* loadData(options.dataPath)
    const byName = new Map<string, PlayerArchives>(data.players.map((p) => [p.username.toLowerCase(), p]))
    const initial = Math.max(0, options.months ?? Number.POSITIVE_INFINITY)
    const visible = yield* Ref.make<ReadonlyMap<string, number>>(
      new Map(data.players.map((p) => [p.username.toLowerCase(), Math.min(initial, p.archives.length)]))
    )
    const port = options.port ?? 0
    const server = yield* NodeHttpServer.make(() => createServer(), { host: HOST, port }).pipe(
      Effect.mapError(
        (e) =>
          new ChessApiListenError({
            host: HOST,
            port,
            message: `Cannot listen on ${HOST}:${port} (${String(e.cause)}); pick another port or omit it for an ephemeral one.`
          })
      )
    )
    if (server.address._tag !== "TcpAddress") {
      return yield* new ChessApiListenError({
        host: HOST,
        port,
        message: `Expected a TCP address, got a Unix socket at ${server.address.path}.`
      })
    }
    const baseUrl = `http://${HOST}:${server.address.port}`
    const archiveUrl = (username: string, year: number, month: number): string =>
      `${baseUrl}/pub/player/${encodeURIComponent(username.toLowerCase())}/games/${year}/${pad2(month)}`

    const lookup = (username: string) =>
      Effect.gen(function* () {
        const key = username.toLowerCase()
        const player = byName.get(key)
        if (player === undefined) {
          return yield* new ChessApiUnknownPlayer({
            username,
            message: `No player "${username}" in the chess data; known players: ${[...byName.keys()].join(", ")}.`
          })
        }
        const count = (yield* Ref.get(visible)).get(key) ?? 0
        return { key, player, published: player.archives.slice(0, count) }
      })

    const publishedArchives = (username: string) =>
      Effect.map(lookup(username), ({ key, published }) => published.map((a) => archiveUrl(key, a.year, a.month)))

    const publishMonth = (username: string) =>
      Effect.flatMap(lookup(username), ({ key, player }) =>
        Ref.modify(visible, (counts): [Option.Option<string>, ReadonlyMap<string, number>] => {
          const count = counts.get(key) ?? 0
          const next = player.archives[count]
          if (next === undefined) return [Option.none(), counts]
          return [Option.some(archiveUrl(key, next.year, next.month)), new Map(counts).set(key, count + 1)]
        })
      )

    // The keys come from the data set itself, so the unknown-player failure cannot happen here.
    const publishNextMonths = Effect.map(
      Effect.forEach(byName.keys(), (key) => Effect.orDie(publishMonth(key))),
      (urls) => urls.flatMap((url) => Option.toArray(url))
    )

    const unknownPlayer = (username: string) =>
      notFound(`User "${username}" not found. This local server knows: ${[...byName.keys()].join(", ")}.`)

    const router = HttpRouter.empty.pipe(
      HttpRouter.get(
        "/pub/player/:username/games/archives",
        Effect.gen(function* () {
          const { username = "" } = yield* HttpRouter.params
          const found = yield* Effect.option(lookup(username))
          if (Option.isNone(found)) return yield* unknownPlayer(username)
          const { key, published } = found.value
          return yield* HttpServerResponse.json({
            archives: published.map((a) => archiveUrl(key, a.year, a.month))
          })
        })
      ),
      HttpRouter.get(
        "/pub/player/:username/games/:year/:month",
        Effect.gen(function* () {
          const { username = "", year = "", month = "" } = yield* HttpRouter.params
          const found = yield* Effect.option(lookup(username))
          if (Option.isNone(found)) return yield* unknownPlayer(username)
          const wanted = `${year}/${month}`
          const archive = found.value.published.find((a) => monthKey(a) === wanted)
          if (archive === undefined) {
            const published = found.value.published.map(monthKey)
            return yield* notFound(
              `No archive ${wanted} for "${username}"; published months: ${published.join(", ") || "none"}. Use YYYY/MM.`
            )
          }
          const games: ReadonlyArray<Game> = archive.games
          return yield* HttpServerResponse.json({ games })
        })
      )
    )

    const app = router.pipe(
      Effect.catchTag("RouteNotFound", (e) =>
        notFound(`No route for ${e.request.method} ${e.request.url}; this server only serves /pub/player/... games.`)
      )
    )
    yield* server.serve(app)

    return {
      baseUrl,
      players: [...byName.keys()],
      archiveUrl,
      publishedArchives,
      publishMonth,
      publishNextMonths
    } satisfies ChessApiService
  })

/**
 * The running chess API server, as a service.
 *
 * @since 0.1.0
 */
export class ChessApi extends Context.Tag("pipestate/examples/chess/ChessApi")<ChessApi, ChessApiService>() {
  /**
   * Starts the server for the lifetime of the layer, with Node's file system for the data file.
   *
   * @since 0.1.0
   */
  static readonly layer = (
    options: ChessApiServerOptions = {}
  ): Layer.Layer<ChessApi, ChessApiDataError | ChessApiListenError> =>
    Layer.scoped(ChessApi, ChessApiServer(options)).pipe(Layer.provide(NodeContext.layer))
}
