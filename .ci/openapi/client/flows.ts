// The platform's main flows through a client generated from the served
// OpenAPI document (openapi-typescript types, openapi-fetch calls), as an
// integrator would write them. Every call checks the exact status the
// document promises; any other answer fails the run. tsc type-checks this
// file against the generated types first, so a document that stops
// matching these calls fails too.
//
//   node build/flows.js http://127.0.0.1:8080   (ADMIN_USER, ADMIN_PASSWORD)
import createClient from "openapi-fetch";
import type { paths, components } from "./schema.js";

// The little of Node this needs (no @types/node to pin).
declare const process: { argv: string[]; env: Record<string, string | undefined>; exit(code: number): never };

const base = process.argv[2];
const adminUser = process.env.ADMIN_USER ?? "";
const adminPassword = process.env.ADMIN_PASSWORD ?? "";
if (!base || !adminUser || !adminPassword) {
  throw new Error("usage: node build/flows.js BASE_URL (with ADMIN_USER, ADMIN_PASSWORD)");
}

const api = createClient<paths>({ baseUrl: base });
const auth = (token: string) => ({ Authorization: `Bearer ${token}` });

function expect(what: string, res: { response: Response }, status: number): void {
  if (res.response.status !== status) {
    throw new Error(`${what}: HTTP ${res.response.status}, want ${status}`);
  }
  console.log(`ok ${status} ${what}`);
}

function must<T>(what: string, v: T | undefined | null): T {
  if (v === undefined || v === null) throw new Error(`${what}: missing`);
  return v;
}

type Status = components["schemas"]["Status"];

function violation(st: Status | undefined, field: string): boolean {
  return (st?.details ?? []).some((d) => d["@type"] === "type.googleapis.com/google.rpc.BadRequest" &&
    "fieldViolations" in d && d.fieldViolations.some((v) => v.field === field));
}

async function main(): Promise<void> {
  // A guest session, a favorite colour (idempotent), a share link.
  const guest = await api.POST("/api/v1/auth/guest", { body: {} });
  expect("create guest", guest, 200);
  const token = must("access token", guest.data?.session?.accessToken);

  const bad = await api.PUT("/api/v1/favorite", { body: { color: "not a colour" }, headers: auth(token) });
  expect("bad colour", bad, 400);
  if (!violation(bad.error, "color")) throw new Error(`bad colour: no violation for color in ${JSON.stringify(bad.error)}`);

  const fav = await api.PUT("/api/v1/favorite", {
    body: { color: "hsl(120, 100%, 25%)" }, headers: { ...auth(token), "Idempotency-Key": "flow-1" },
  });
  expect("set favorite", fav, 200);
  if (fav.data?.hex !== "#008000") throw new Error(`set favorite: hex ${fav.data?.hex}`);
  expect("get favorite", await api.GET("/api/v1/favorite", { headers: auth(token) }), 200);

  const share = await api.POST("/api/v1/shares", { body: { snapshot: true }, headers: auth(token) });
  expect("create share", share, 201);
  const slug = must("slug", share.data?.slug);
  expect("get share", await api.GET("/api/v1/shares/{slug}", { params: { path: { slug } } }), 200);
  const page = await api.GET("/s/{slug}", { params: { path: { slug } }, parseAs: "text" });
  expect("share page", page, 200);
  if (!page.response.headers.get("content-type")?.startsWith("text/html")) throw new Error("share page is not HTML");
  const etag = must("share page ETag", page.response.headers.get("etag"));
  expect("share page revalidated", await api.GET("/s/{slug}", {
    params: { path: { slug }, header: { "If-None-Match": etag } }, parseAs: "text",
  }), 304);
  expect("unknown share", await api.GET("/api/v1/shares/{slug}", { params: { path: { slug: "AAAAAAAAAAA" } } }), 404);

  // A short link: create, follow (302 with Location), stats.
  const short = await api.POST("/api/v1/shorten", { body: { longUrl: "https://example.com/flows" }, headers: auth(token) });
  expect("shorten", short, 201);
  const code = must("code", short.data?.code);
  const follow = await api.GET("/{code}", { params: { path: { code } }, redirect: "manual", parseAs: "text" });
  expect("follow", follow, 302);
  if (follow.response.headers.get("location") !== "https://example.com/flows") throw new Error("follow: wrong Location");
  expect("stats", await api.GET("/api/v1/stats/{code}", { params: { path: { code } }, headers: auth(token) }), 200);
  expect("shorten without a session", await api.POST("/api/v1/shorten", { body: { longUrl: "https://example.com/" } }), 401);

  // Voting: an admin runs an election, a registered user votes once.
  const admin = await api.POST("/api/v1/auth/login", { body: { username: adminUser, password: adminPassword } });
  expect("admin login", admin, 200);
  const adminToken = must("admin token", admin.data?.session?.accessToken);
  const election = await api.POST("/api/v1/elections", {
    body: { title: "Best colour", candidates: [{ candidateId: "red", name: "Red" }, { candidateId: "blue", name: "Blue" }] },
    headers: auth(adminToken),
  });
  expect("create election", election, 201);
  const electionId = must("election id", election.data?.electionId);
  expect("create election as a guest", await api.POST("/api/v1/elections", {
    body: { title: "t", candidates: [] }, headers: auth(token),
  }), 403);
  expect("open election", await api.POST("/api/v1/elections/{electionId}:open", {
    params: { path: { electionId } }, body: {}, headers: auth(adminToken),
  }), 200);
  const voter = await api.POST("/api/v1/auth/register", { body: { username: `flows-${Date.now()}`, password: "flows-password" } });
  expect("register", voter, 200);
  const voterToken = must("voter token", voter.data?.session?.accessToken);
  const vote = await api.POST("/api/v1/votes", {
    body: { electionId, candidateId: "red" }, headers: { ...auth(voterToken), "Idempotency-Key": "flow-vote" },
  });
  expect("vote", vote, 201);
  expect("vote again", await api.POST("/api/v1/votes", { body: { electionId, candidateId: "blue" }, headers: auth(voterToken) }), 409);
  const results = await api.GET("/api/v1/results/{electionId}", { params: { path: { electionId } } });
  expect("results", results, 200);
  if (results.data?.totalVotes !== "1") throw new Error(`results: totalVotes ${results.data?.totalVotes}`);
  const voted = await api.GET("/api/v1/votes/status/{userId}", {
    params: { path: { userId: must("voter id", voter.data?.user?.id) }, query: { electionId } }, headers: auth(voterToken),
  });
  expect("vote status", voted, 200);
  if (voted.data?.voted !== true) throw new Error("vote status: not voted");

  // The canvas: info, a placement, the cooldown, the board.
  expect("canvas info", await api.GET("/api/v1/canvas/info"), 200);
  expect("place pixel", await api.POST("/api/v1/canvas/pixels", { body: { x: 1, y: 2, color: 5 }, headers: auth(token) }), 200);
  const again = await api.POST("/api/v1/canvas/pixels", { body: { x: 1, y: 2, color: 6 }, headers: auth(token) });
  expect("place pixel in the cooldown", again, 429);
  if (!again.response.headers.get("retry-after")) throw new Error("cooldown: no Retry-After");
  const png = await api.GET("/canvas.png", { parseAs: "arrayBuffer" });
  expect("board image", png, 200);
  if (png.response.headers.get("content-type") !== "image/png") throw new Error("board image is not a PNG");
  expect("pixel history as a guest", await api.GET("/api/v1/pixel", { params: { query: { x: 1, y: 2 } }, headers: auth(token) }), 403);

  expect("logout", await api.POST("/api/v1/auth/logout", { body: {}, headers: auth(token) }), 200);
  expect("after logout", await api.GET("/api/v1/favorite", { headers: auth(token) }), 401);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
