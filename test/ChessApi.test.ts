import { FileSystem, FetchHttpClient, HttpClient, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Option, Schema } from "effect"
import { archiveMonth, ChessApiError, fetchGames, Game, listArchives } from "../examples/chess/client.js"
import { generateChessData } from "../examples/chess/data/dataset.js"
import { ChessApi, ChessApiServer, type ChessApiServerOptions } from "../examples/chess/server.js"

const withServer = (options: ChessApiServerOptions = {}) =>
  Layer.mergeAll(ChessApi.layer(options), FetchHttpClient.layer)

const PLAYER = "magnuscarlsen"

describe("chess API server and client", () => {
  it.live("lists archives oldest first and fetches their games", () =>
    Effect.gen(function* () {
      const api = yield* ChessApi
      expect(api.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect(api.players).toEqual(["magnuscarlsen", "vincentkeymer", "dommarajugukesh"])

      const archives = yield* listArchives(api.baseUrl, PLAYER)
      expect(archives.map((url) => Option.getOrNull(archiveMonth(url)))).toEqual([
        "2024/01",
        "2024/02",
        "2024/03",
        "2024/04",
        "2024/05"
      ])
      expect(archives[0]).toBe(`${api.baseUrl}/pub/player/magnuscarlsen/games/2024/01`)

      const games = yield* fetchGames(archives[0]!)
      expect(games.length).toBeGreaterThanOrEqual(3)
      expect(games.length).toBeLessThanOrEqual(12)
      for (const game of games) {
        expect([game.white.username, game.black.username]).toContain("MagnusCarlsen")
        expect(game.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
        // January 2024, in unix seconds.
        expect(game.end_time).toBeGreaterThanOrEqual(1704067200)
        expect(game.end_time).toBeLessThan(1706745600)
        expect(game.pgn).toContain('[Site "Chess.com"]')
      }
      const endTimes = games.map((g) => g.end_time)
      expect(endTimes).toEqual([...endTimes].sort((a, b) => a - b))
      expect(games.every((g) => typeof g.initial_setup === "string")).toBe(true)
    }).pipe(Effect.provide(withServer()))
  )

  it("keeps fields the Game schema does not name, at every level", () => {
    const [game] = generateChessData().players[0]!.archives[0]!.games
    const extended = {
      ...game,
      tournament: "https://api.chess.com/pub/tournament/x",
      white: { ...game!.white, club: "c" }
    }
    const decoded = Schema.decodeUnknownSync(Game)(extended)
    expect(decoded.tournament).toBe("https://api.chess.com/pub/tournament/x")
    expect(decoded.white.club).toBe("c")
    expect(Schema.decodeUnknownEither(Game)({ ...game, end_time: "yesterday" })._tag).toBe("Left")
  })

  it.live("accepts usernames in any case", () =>
    Effect.gen(function* () {
      const api = yield* ChessApi
      const archives = yield* listArchives(`${api.baseUrl}/`, "MagnusCarlsen")
      expect(archives.length).toBe(5)
    }).pipe(Effect.provide(withServer()))
  )

  it.live("accuracies only appear in each player's newest month", () =>
    Effect.gen(function* () {
      const api = yield* ChessApi
      for (const player of api.players) {
        const archives = yield* listArchives(api.baseUrl, player)
        const perMonth = yield* Effect.forEach(archives, (url) => fetchGames(url))
        const withAccuracies = perMonth.map((games) => games.filter((g) => g.accuracies !== undefined).length)
        expect(withAccuracies.slice(0, -1).every((n) => n === 0)).toBe(true)
        expect(withAccuracies.at(-1)).toBeGreaterThan(0)
      }
    }).pipe(Effect.provide(withServer()))
  )

  it.live("answers 404 with chess.com's body for unknown players, months and routes", () =>
    Effect.gen(function* () {
      const api = yield* ChessApi
      const unknownPlayer = yield* Effect.flip(listArchives(api.baseUrl, "nobody_here"))
      expect(unknownPlayer).toBeInstanceOf(ChessApiError)
      expect(unknownPlayer.reason).toBe("NotFound")
      expect(unknownPlayer.status).toBe(404)
      expect(unknownPlayer.message).toContain('User "nobody_here" not found')

      const unknownMonth = yield* Effect.flip(fetchGames(`${api.baseUrl}/pub/player/${PLAYER}/games/2023/12`))
      expect(unknownMonth.reason).toBe("NotFound")
      expect(unknownMonth.message).toContain("2023/12")

      const gamesOfNobody = yield* Effect.flip(fetchGames(`${api.baseUrl}/pub/player/nobody_here/games/2024/01`))
      expect(gamesOfNobody.reason).toBe("NotFound")

      const response = yield* HttpClient.get(`${api.baseUrl}/pub/nothing`)
      expect(response.status).toBe(404)
      expect(yield* response.json).toMatchObject({ code: 0 })
    }).pipe(Effect.provide(withServer()))
  )

  it.live("reports an unreachable server as a Transport error", () =>
    Effect.gen(function* () {
      const api = yield* ChessApi
      // The tests's own server holds a live port; ask one that nobody listens on.
      const deadBase = yield* Effect.scoped(
        Effect.map(ChessApiServer(), (other) => other.baseUrl).pipe(Effect.provide(NodeContext.layer))
      )
      expect(deadBase).not.toBe(api.baseUrl)
      const error = yield* Effect.flip(listArchives(deadBase, PLAYER))
      expect(error.reason).toBe("Transport")
    }).pipe(Effect.provide(withServer()))
  )

  it.live("rejects a body that is not the expected shape", () =>
    Effect.gen(function* () {
      const api = yield* ChessApi
      // An archive list is not a games list.
      const error = yield* Effect.flip(fetchGames(`${api.baseUrl}/pub/player/${PLAYER}/games/archives`))
      expect(error.reason).toBe("InvalidResponse")
    }).pipe(Effect.provide(withServer()))
  )

  it.live("publishing a month makes it show up in the list", () =>
    Effect.gen(function* () {
      const api = yield* ChessApi
      const before = yield* listArchives(api.baseUrl, PLAYER)
      expect(before.map((url) => Option.getOrNull(archiveMonth(url)))).toEqual(["2024/01", "2024/02"])
      expect(yield* api.publishedArchives(PLAYER)).toEqual(before)

      const hidden = `${api.baseUrl}/pub/player/${PLAYER}/games/2024/03`
      const notYet = yield* Effect.flip(fetchGames(hidden))
      expect(notYet.reason).toBe("NotFound")

      const published = yield* api.publishMonth(PLAYER)
      expect(published).toEqual(Option.some(hidden))
      const after = yield* listArchives(api.baseUrl, PLAYER)
      expect(after).toEqual([...before, hidden])
      expect((yield* fetchGames(hidden)).length).toBeGreaterThan(0)

      // Other players are untouched until publishNextMonths moves everyone on.
      expect((yield* listArchives(api.baseUrl, "vincentkeymer")).length).toBe(2)
      const next = yield* api.publishNextMonths
      expect(next.map((url) => url.replace(api.baseUrl, ""))).toEqual([
        "/pub/player/magnuscarlsen/games/2024/04",
        "/pub/player/vincentkeymer/games/2024/03",
        "/pub/player/dommarajugukesh/games/2024/03"
      ])

      const unknown = yield* Effect.flip(api.publishMonth("nobody_here"))
      expect(unknown._tag).toBe("ChessApiUnknownPlayer")
    }).pipe(Effect.provide(withServer({ months: 2 })))
  )

  it.live("publishMonth returns None once every month is out", () =>
    Effect.gen(function* () {
      const api = yield* ChessApi
      expect(yield* api.publishMonth("vincentkeymer")).toEqual(Option.none())
      expect((yield* api.publishNextMonths).length).toBe(0)
    }).pipe(Effect.provide(withServer()))
  )

  it.live("fails with an actionable error when the data file is missing", () =>
    Effect.gen(function* () {
      const result = yield* Effect.either(Layer.build(ChessApi.layer({ dataPath: "/nonexistent/archives.json" })))
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) {
        expect(result.left._tag).toBe("ChessApiDataError")
        expect(result.left.message).toContain("generate.ts")
      }
    }).pipe(Effect.scoped)
  )

  it.live("the shipped data file is exactly what the seeded generator produces", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const file = path.join(
        yield* path.fromFileUrl(new URL("../examples/chess/data/", import.meta.url)),
        "archives.json"
      )
      const shipped = yield* Schema.decodeUnknown(Schema.parseJson())(yield* fs.readFileString(file))
      expect(shipped).toEqual(generateChessData())
      expect(generateChessData(7)).toEqual(generateChessData(7))
      expect(generateChessData(7)).not.toEqual(generateChessData(8))
    }).pipe(Effect.provide(NodeContext.layer))
  )
})
