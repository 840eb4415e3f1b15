package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/platform/ratelimit"
)

// GetPixel, through gRPC and REST on both engines, anonymous and signed
// in: the latest placement's colour and time, the placer by display name
// only (a username, "guest", nothing once the account is deleted), never
// their id; bad coordinates name the field.
func TestCanvasGetPixel(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := startCanvas(t, b, nil)
		g := canvasGRPC{grpcAPI{p}}
		const pw = "correct horse battery staple"
		place := func(token string, x, y, color int32) int64 {
			t.Helper()
			res, err := g.place(t, token, x, y, color)
			if err != nil {
				t.Fatal(err)
			}
			return res.GetSeq()
		}
		guestID, guestTok := g.guest(t)
		place(guestTok, 5, 7, 3)
		otherID, otherTok := g.guest(t)
		guestSeq := place(otherTok, 5, 7, 9) // last write wins
		aliceID, aliceTok, err := g.g.register(t, "", "pixelalice", pw)
		if err != nil {
			t.Fatal(err)
		}
		aliceSeq := place(aliceTok, 6, 7, 4)
		bobID, bobTok, err := g.g.register(t, "", "pixelbob", pw)
		if err != nil {
			t.Fatal(err)
		}
		bobSeq := place(bobTok, 7, 7, 5)
		if err := deleteAccount(t, p, "grpc", bobTok, pw); err != nil {
			t.Fatal(err)
		}
		ids := []string{guestID, otherID, aliceID, bobID}

		for _, c := range canvasClients(p) {
			t.Run(c.name(), func(t *testing.T) {
				_, viewer := c.guest(t)
				for _, token := range []string{"", viewer} {
					for _, want := range []struct {
						x, y, color int32
						seq         int64
						author      string
						kind        canvasv1.AuthorKind
					}{
						{5, 7, 9, guestSeq, "guest", canvasv1.AuthorKind_AUTHOR_KIND_GUEST},
						{6, 7, 4, aliceSeq, "pixelalice", canvasv1.AuthorKind_AUTHOR_KIND_USER},
						{7, 7, 5, bobSeq, "", canvasv1.AuthorKind_AUTHOR_KIND_DELETED},
					} {
						got, err := c.pixel(t, token, want.x, want.y)
						if err != nil {
							t.Fatal(err)
						}
						if !got.GetPlaced() || got.GetX() != want.x || got.GetY() != want.y || got.GetColor() != want.color ||
							got.GetSeq() != want.seq || got.GetAuthor() != want.author || got.GetAuthorKind() != want.kind ||
							got.GetTime() == nil || got.GetTime().AsTime().IsZero() {
							t.Fatalf("pixel (%d,%d) = %v, want colour %d seq %d by %q (%v)", want.x, want.y, got, want.color, want.seq, want.author, want.kind)
						}
						js := protojson.Format(got)
						for _, id := range ids {
							if strings.Contains(js, id) {
								t.Fatalf("pixel (%d,%d) reveals a user id: %s", want.x, want.y, js)
							}
						}
					}
					got, err := c.pixel(t, token, 0, 0)
					if err != nil || got.GetPlaced() || got.GetColor() != 0 || got.GetSeq() != 0 || got.GetTime() != nil ||
						got.GetAuthor() != "" || got.GetAuthorKind() != canvasv1.AuthorKind_AUTHOR_KIND_UNSPECIFIED {
						t.Fatalf("untouched pixel: %v, %v", got, err)
					}
				}
				_, err := c.pixel(t, "", -1, 0)
				wantField(t, err, "x")
				_, err = c.pixel(t, "", 0, 48)
				wantField(t, err, "y")
				_, err = c.pixel(t, "", 64, -1)
				wantField(t, err, "x")
				wantField(t, err, "y")
			})
		}

		// What the public sees over REST, byte for byte, holds no id either.
		r := newREST(p)
		res, body := r.do(t, "GET", "/api/v1/canvas/pixels/5/7", "", nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET pixel: HTTP %d %s", res.StatusCode, body)
		}
		for _, id := range ids {
			if strings.Contains(string(body), id) {
				t.Fatalf("REST pixel reveals a user id: %s", body)
			}
		}
		for _, path := range []string{"/api/v1/canvas/pixels/abc/7", "/api/v1/canvas/pixels/5/9999999999999"} {
			res, body := r.do(t, "GET", path, "", nil)
			if res.StatusCode != http.StatusBadRequest {
				t.Fatalf("GET %s: HTTP %d %s, want 400", path, res.StatusCode, body)
			}
			wantField(t, restError(t, res, body), map[bool]string{true: "x", false: "y"}[strings.Contains(path, "abc")])
		}
	})
}

// Pixel lookups are public database reads: the 31st from one address (or
// one IPv6 /64) within the limit's period is refused with 429 and
// Retry-After, through REST and gRPC, while another address still looks.
func TestCanvasGetPixelLimitedPerAddress(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		p := startCanvas(t, b, func(cfg *app.Config) {
			addrConfig(cfg)
			cfg.Canvas.PixelLookupLimit = ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 30}
		})
		r := newREST(p)
		client := canvasv1.NewCanvasServiceClient(p.conn)
		surfaces := map[string]func(from string) error{
			"rest": func(from string) error {
				_, err := r.call(t, "GET", "/api/v1/canvas/pixels/1/2", "", nil, nil, restFrom(from)...)
				return err
			},
			"grpc": func(from string) error {
				_, err := client.GetPixel(grpcAPI{p}.ctx("", grpcFrom(from)...), &canvasv1.GetPixelRequest{X: 1, Y: 2})
				return err
			},
		}
		for name, attempt := range surfaces {
			for _, v6 := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/v6=%v", name, v6), func(t *testing.T) {
					perAddress(t, v6, attempt, func(err error) { wantCode(t, err, codes.ResourceExhausted) })
				})
			}
		}
	})
}
