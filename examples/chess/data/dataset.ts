/**
 * The deterministic generator behind `archives.json`. Kept pure (no I/O, no clock, no
 * `Math.random`) so the test suite can regenerate the data and check the shipped file still
 * matches it.
 *
 * @since 0.1.0
 */
import type { ChessData, Game, GamePlayer, MonthlyArchive, PlayerArchives } from "../schema.js"

/**
 * The seed the shipped file was generated with.
 *
 * @since 0.1.0
 */
export const DEFAULT_SEED = 20240101

/** Accuracies appear only in each player's newest month, so a loader sees that column arrive late. */
const ACCURACY_FROM_LAST_MONTHS = 1

const PLAYERS: ReadonlyArray<{ readonly username: string; readonly display: string; readonly months: number }> = [
  { username: "magnuscarlsen", display: "MagnusCarlsen", months: 5 },
  { username: "vincentkeymer", display: "VincentKeymer", months: 4 },
  { username: "dommarajugukesh", display: "DommarajuGukesh", months: 6 }
]

const OPPONENTS: ReadonlyArray<string> = [
  "KnightOwl_77",
  "pawnstorm",
  "QueensideCastle",
  "endgame_eddie",
  "BlitzBarista",
  "zugzwang_zoe",
  "FianchettoFred",
  "rookandroll",
  "smothered_mate",
  "TempoThief"
]

interface TimeControl {
  readonly control: string
  readonly timeClass: "bullet" | "blitz" | "rapid" | "daily"
}

const TIME_CONTROLS: ReadonlyArray<TimeControl> = [
  { control: "60", timeClass: "bullet" },
  { control: "180", timeClass: "blitz" },
  { control: "180+2", timeClass: "blitz" },
  { control: "300", timeClass: "blitz" },
  { control: "600", timeClass: "rapid" },
  { control: "1/86400", timeClass: "daily" }
]

interface Opening {
  readonly moves: string
  readonly eco: string
  readonly fen: string
}

const OPENINGS: ReadonlyArray<Opening> = [
  {
    moves: "1. e4 c5 2. Nf3 d6 3. d4 cxd4 4. Nxd4 Nf6 5. Nc3 a6",
    eco: "https://www.chess.com/openings/Sicilian-Defense-Najdorf-Variation",
    fen: "rnbqkb1r/1p2pppp/p2p1n2/8/3NP3/2N5/PPP2PPP/R1BQKB1R w KQkq - 0 6"
  },
  {
    moves: "1. d4 Nf6 2. c4 e6 3. Nc3 Bb4 4. e3 O-O",
    eco: "https://www.chess.com/openings/Nimzo-Indian-Defense-Rubinstein-Variation",
    fen: "rnbq1rk1/pppp1ppp/4pn2/8/1bPP4/2N1P3/PP3PPP/R1BQKBNR w KQ - 1 5"
  },
  {
    moves: "1. e4 e5 2. Nf3 Nc6 3. Bb5 a6 4. Ba4 Nf6 5. O-O Be7",
    eco: "https://www.chess.com/openings/Ruy-Lopez-Opening-Morphy-Defense-Closed",
    fen: "r1bqk2r/1pppbppp/p1n2n2/4p3/B3P3/5N2/PPPP1PPP/RNBQ1RK1 w kq - 4 6"
  },
  {
    moves: "1. c4 e5 2. Nc3 Nf6 3. g3 d5 4. cxd5 Nxd5",
    eco: "https://www.chess.com/openings/English-Opening-Kings-English-Variation",
    fen: "rnbqkb1r/ppp2ppp/8/3np3/8/2N3P1/PP1PPP1P/R1BQKBNR w KQkq - 0 5"
  },
  {
    moves: "1. d4 d5 2. c4 c6 3. Nf3 Nf6 4. Nc3 dxc4",
    eco: "https://www.chess.com/openings/Slav-Defense-Modern-Line",
    fen: "rnbqkb1r/pp2pppp/2p2n2/8/2pP4/2N2N2/PP2PPPP/R1BQKB1R w KQkq - 0 5"
  }
]

const STANDARD_SETUP = "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"
const CHESS960_SETUPS: ReadonlyArray<string> = [
  "bnrkqbrn/pppppppp/8/8/8/8/PPPPPPPP/BNRKQBRN w KQkq - 0 1",
  "nrbkqrnb/pppppppp/8/8/8/8/PPPPPPPP/NRBKQRNB w KQkq - 0 1"
]
const CHESS960_FEN = "1rk1qr1b/ppp1pppp/2np1n2/8/3P4/2N2N2/PPP1PPPP/1RK1QR1B w KQkq - 4 5"

const DECISIVE_LOSSES: ReadonlyArray<{ readonly result: string; readonly termination: string }> = [
  { result: "resigned", termination: "resignation" },
  { result: "checkmated", termination: "checkmate" },
  { result: "timeout", termination: "time" },
  { result: "abandoned", termination: "abandonment" }
]
const DRAWS: ReadonlyArray<{ readonly result: string; readonly termination: string }> = [
  { result: "agreed", termination: "agreement" },
  { result: "repetition", termination: "repetition" },
  { result: "stalemate", termination: "stalemate" },
  { result: "insufficient", termination: "insufficient material" }
]

/** mulberry32: tiny, fast and identical on every platform, which is all a fixture needs. */
const makeRandom = (seed: number) => {
  let state = seed >>> 0
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1))
  const pick = <A>(items: ReadonlyArray<A>): A => items[int(0, items.length - 1)]!
  const hex = (digits: number): string => {
    let out = ""
    for (let i = 0; i < digits; i++) out += int(0, 15).toString(16)
    return out
  }
  const uuid = (): string => `${hex(8)}-${hex(4)}-4${hex(3)}-${pick(["8", "9", "a", "b"])}${hex(3)}-${hex(12)}`
  return { next, int, pick, uuid }
}

type Random = ReturnType<typeof makeRandom>

const pad2 = (n: number): string => String(n).padStart(2, "0")

const daysInMonth = (year: number, month: number): number => new Date(Date.UTC(year, month, 0)).getUTCDate()

const playerRef = (display: string, rating: number, result: string, uuid: string): GamePlayer => ({
  username: display,
  rating,
  result,
  "@id": `https://api.chess.com/pub/player/${display.toLowerCase()}`,
  uuid
})

const makePgn = (fields: {
  readonly event: string
  readonly date: Date
  readonly white: GamePlayer
  readonly black: GamePlayer
  readonly score: string
  readonly timeControl: string
  readonly termination: string
  readonly moves: string
  readonly setup: string | undefined
}): string => {
  const d = fields.date
  const tags: Array<[string, string]> = [
    ["Event", fields.event],
    ["Site", "Chess.com"],
    ["Date", `${d.getUTCFullYear()}.${pad2(d.getUTCMonth() + 1)}.${pad2(d.getUTCDate())}`],
    ["Round", "-"],
    ["White", fields.white.username],
    ["Black", fields.black.username],
    ["Result", fields.score],
    ["WhiteElo", String(fields.white.rating)],
    ["BlackElo", String(fields.black.rating)],
    ["TimeControl", fields.timeControl],
    ["Termination", fields.termination]
  ]
  if (fields.setup !== undefined) {
    tags.push(["SetUp", "1"], ["FEN", fields.setup], ["Variant", "Chess960"])
  }
  const header = tags.map(([key, value]) => `[${key} "${value}"]`).join("\n")
  return `${header}\n\n${fields.moves} ${fields.score}\n`
}

const makeGame = (
  random: Random,
  context: {
    readonly player: { readonly display: string }
    readonly playerUuid: string
    readonly opponentUuids: ReadonlyMap<string, string>
    readonly rating: number
    readonly endTime: number
    readonly gameId: number
    readonly withAccuracies: boolean
  }
): Game => {
  const tc = random.pick(TIME_CONTROLS)
  const opening = random.pick(OPENINGS)
  const chess960 = random.next() < 0.1
  const opponent = random.pick(OPPONENTS)
  const opponentRating = context.rating + random.int(-450, 150)
  const playerIsWhite = random.next() < 0.5
  const roll = random.next()
  const outcome: "player" | "opponent" | "draw" = roll < 0.6 ? "player" : roll < 0.8 ? "opponent" : "draw"
  const loss = random.pick(DECISIVE_LOSSES)
  const draw = random.pick(DRAWS)
  const playerResult = outcome === "player" ? "win" : outcome === "opponent" ? loss.result : draw.result
  const opponentResult = outcome === "opponent" ? "win" : outcome === "player" ? loss.result : draw.result
  const playerSide = playerRef(context.player.display, context.rating, playerResult, context.playerUuid)
  const opponentSide = playerRef(opponent, opponentRating, opponentResult, context.opponentUuids.get(opponent) ?? "")
  const white = playerIsWhite ? playerSide : opponentSide
  const black = playerIsWhite ? opponentSide : playerSide
  const whiteWon = (outcome === "player") === playerIsWhite
  const score = outcome === "draw" ? "1/2-1/2" : whiteWon ? "1-0" : "0-1"
  const winner = whiteWon ? white.username : black.username
  const termination = outcome === "draw" ? `Game drawn by ${draw.termination}` : `${winner} won by ${loss.termination}`
  const setup = chess960 ? random.pick(CHESS960_SETUPS) : STANDARD_SETUP
  const daily = tc.timeClass === "daily"
  const game: Game = {
    url: `https://www.chess.com/game/${daily ? "daily" : "live"}/${context.gameId}`,
    pgn: makePgn({
      event: daily ? "Let's Play!" : "Live Chess",
      date: new Date(context.endTime * 1000),
      white,
      black,
      score,
      timeControl: tc.control,
      termination,
      moves: opening.moves,
      setup: chess960 ? setup : undefined
    }),
    time_control: tc.control,
    end_time: context.endTime,
    rated: random.next() < 0.9,
    uuid: random.uuid(),
    initial_setup: setup,
    fen: chess960 ? CHESS960_FEN : opening.fen,
    time_class: tc.timeClass,
    rules: chess960 ? "chess960" : "chess",
    white,
    black,
    ...(chess960 ? {} : { eco: opening.eco }),
    ...(daily ? { start_time: context.endTime - random.int(3, 9) * 86400 } : {})
  }
  if (!context.withAccuracies) return game
  return {
    ...game,
    accuracies: {
      white: Math.round((72 + random.next() * 27) * 100) / 100,
      black: Math.round((72 + random.next() * 27) * 100) / 100
    }
  }
}

/**
 * Builds the whole data set from a seed: three players, 4–6 months each from 2024/01, 3–12 games
 * a month, `accuracies` only on some games of each player's newest month.
 *
 * @since 0.1.0
 */
export const generateChessData = (seed: number = DEFAULT_SEED): ChessData => {
  const random = makeRandom(seed)
  const opponentUuids = new Map(OPPONENTS.map((name) => [name, random.uuid()] as const))
  let gameId = 10_000_000_000 + random.int(0, 999_999)
  const players: Array<PlayerArchives> = PLAYERS.map((player) => {
    const playerUuid = random.uuid()
    let rating = random.int(2750, 3250)
    const archives: Array<MonthlyArchive> = []
    for (let month = 1; month <= player.months; month++) {
      const year = 2024
      const count = random.int(3, 12)
      const monthStart = Date.UTC(year, month - 1, 1) / 1000
      const monthSeconds = daysInMonth(year, month) * 86400
      const endTimes = Array.from({ length: count }, () => monthStart + random.int(0, monthSeconds - 1)).sort(
        (a, b) => a - b
      )
      const withAccuraciesMonth = month > player.months - ACCURACY_FROM_LAST_MONTHS
      // At least the first game of that month gets accuracies so the column is guaranteed to show.
      const games = endTimes.map((endTime, index) => {
        rating += random.int(-12, 14)
        gameId += random.int(1, 5000)
        return makeGame(random, {
          player,
          playerUuid,
          opponentUuids,
          rating,
          endTime,
          gameId,
          withAccuracies: withAccuraciesMonth && (index === 0 || random.next() < 0.5)
        })
      })
      archives.push({ year, month, games })
    }
    return { username: player.username, archives }
  })
  return { generator: "examples/chess/data/generate.ts", seed, players }
}

/**
 * The data set as it is written to disk: two-space JSON with a trailing newline.
 *
 * @since 0.1.0
 */
export const renderChessData = (data: ChessData): string => `${JSON.stringify(data, null, 2)}\n`
