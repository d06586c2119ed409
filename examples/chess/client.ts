/**
 * A small client for the chess.com published-data API (or the local stand-in in `server.ts`):
 * list a player's monthly archives, then fetch the games of one archive. Responses are validated
 * with `Schema`, so a loader downstream only ever sees well-formed games.
 *
 * @since 0.1.0
 */
import { HttpClient, type HttpClientResponse } from "@effect/platform"
import { Effect, Option, Schema } from "effect"
import { ArchivesResponse, type Game, GamesResponse, NotFoundResponse } from "./schema.js"

export { Game } from "./schema.js"

/**
 * Any failure talking to the chess API. `reason` says which:
 *
 * - `NotFound`: 404, an unknown player or a month that has no archive (yet).
 * - `HttpStatus`: any other non-2xx answer.
 * - `Transport`: the request never got an answer (server down, wrong base URL).
 * - `InvalidResponse`: the body is not JSON of the expected shape.
 *
 * @since 0.1.0
 */
export class ChessApiError extends Schema.TaggedError<ChessApiError>()("ChessApiError", {
  url: Schema.String,
  reason: Schema.Literal("NotFound", "HttpStatus", "Transport", "InvalidResponse"),
  status: Schema.optional(Schema.Number),
  message: Schema.String
}) {}

/** The server's own words, when the error body carries chess.com's `{ code, message }`. */
const serverMessage = (response: HttpClientResponse.HttpClientResponse) =>
  response.json.pipe(
    Effect.flatMap(Schema.decodeUnknown(NotFoundResponse)),
    Effect.map((body) => `: ${body.message}`),
    Effect.orElseSucceed(() => "")
  )

const getJson = <A, I>(url: string, schema: Schema.Schema<A, I>, what: string) =>
  Effect.gen(function* () {
    const response = yield* HttpClient.get(url, { acceptJson: true }).pipe(
      Effect.mapError(
        (e) =>
          new ChessApiError({
            url,
            reason: "Transport",
            message: `Could not reach ${url} (${e.message}). Check the base URL and that the chess API server is running.`
          })
      )
    )
    if (response.status === 404) {
      return yield* new ChessApiError({
        url,
        reason: "NotFound",
        status: 404,
        message: `${what} not found at ${url}${yield* serverMessage(response)}`
      })
    }
    if (response.status < 200 || response.status >= 300) {
      return yield* new ChessApiError({
        url,
        reason: "HttpStatus",
        status: response.status,
        message: `Fetching ${what} from ${url} answered HTTP ${response.status}${yield* serverMessage(response)}`
      })
    }
    return yield* response.json.pipe(
      Effect.flatMap(Schema.decodeUnknown(schema, { errors: "all" })),
      Effect.mapError(
        (e) =>
          new ChessApiError({
            url,
            reason: "InvalidResponse",
            status: response.status,
            message: `The ${what} at ${url} is not in the expected shape: ${e.message}`
          })
      )
    )
  })

/**
 * The archive URLs of a player, oldest month first, e.g.
 * `https://api.chess.com/pub/player/magnuscarlsen/games/2024/01`.
 *
 * @param baseUrl - API root without the `/pub` part, e.g. `https://api.chess.com` or `ChessApi`'s `baseUrl`.
 * @param player - chess.com username, any case.
 * @since 0.1.0
 */
export const listArchives = (
  baseUrl: string,
  player: string
): Effect.Effect<ReadonlyArray<string>, ChessApiError, HttpClient.HttpClient> =>
  getJson(
    `${baseUrl.replace(/\/+$/, "")}/pub/player/${encodeURIComponent(player.toLowerCase())}/games/archives`,
    ArchivesResponse,
    `archive list of "${player}"`
  ).pipe(Effect.map((body) => body.archives))

/**
 * The games of one monthly archive, as listed by `listArchives`. Fields the `Game` schema does not
 * name are kept as they came.
 *
 * @since 0.1.0
 */
export const fetchGames = (
  archiveUrl: string
): Effect.Effect<ReadonlyArray<Game>, ChessApiError, HttpClient.HttpClient> =>
  getJson(archiveUrl, GamesResponse, "monthly archive").pipe(Effect.map((body) => body.games))

/**
 * `YYYY/MM` of an archive URL (its last two path segments), handy as an incremental cursor since
 * it sorts in time order; `None` when the URL does not end that way.
 *
 * @since 0.1.0
 */
export const archiveMonth = (archiveUrl: string): Option.Option<string> => {
  const match = /\/(\d{4})\/(\d{2})\/?$/.exec(archiveUrl)
  return match === null ? Option.none() : Option.some(`${match[1]}/${match[2]}`)
}
