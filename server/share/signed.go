package share

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	sharev1 "github.com/apiplatform/platform/gen/go/share/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/clientaddr"
	"github.com/apiplatform/platform/server/platform/page"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/platform/wire"
)

const (
	defaultSignedExpiry = 24 * 3600
	// maxSignedExpiry bounds how long a revoked id stays in every
	// replica's memory, and how long a rotated-out key must be kept.
	maxSignedExpiry = 30 * 24 * 3600
)

// signedPath prefixes signed pages: two segments under /s/, so no slug
// (one segment) can be mistaken for a token or the other way round.
const signedPath = "/s/t/"

var linkIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

// newLinkID is 128 random bits, base64url.
func newLinkID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return b64.EncodeToString(b[:]), nil
}

// CreateSignedShare implements ShareService.
func (s *Service) CreateSignedShare(ctx context.Context, req *sharev1.CreateSignedShareRequest) (*sharev1.CreateSignedShareResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	exp := req.GetExpiresInSec()
	if exp == 0 {
		exp = defaultSignedExpiry
	}
	if exp < 1 || exp > maxSignedExpiry {
		return nil, apierr.InvalidArgument("expires_in_sec", fmt.Sprintf("must be 0 (a day) or 1 to %d seconds", maxSignedExpiry))
	}
	// The same budget as CreateShare: a signed link is a share.
	if err := s.limit(ctx, "share:user:"+p.UserID, s.cfg.UserLimit); err != nil {
		return nil, err
	}
	if err := s.limit(ctx, "share:addr:"+clientaddr.Key(wire.FromContext(ctx).Addr), s.cfg.AddrLimit); err != nil {
		return nil, err
	}
	hexColor, err := s.favorites.CurrentHex(ctx, p.UserID)
	if errors.Is(err, storeerr.ErrNotFound) {
		return nil, apierr.FailedPrecondition("save a favorite colour before sharing it", "NO_FAVORITE")
	}
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	// Milliseconds: the precision of the token's expiry.
	now := s.now().UTC().Truncate(time.Millisecond)
	l := SignedLink{OwnerID: p.UserID, Hex: hexColor, SingleUse: req.GetSingleUse(), CreatedAt: now, ExpiresAt: now.Add(time.Duration(exp) * time.Second)}
	for attempt := 0; ; attempt++ {
		if l.ID, err = newLinkID(); err != nil {
			return nil, apierr.Internal(ctx, err)
		}
		err = s.store.CreateSignedLink(ctx, l)
		if !errors.Is(err, storeerr.ErrConflict) || attempt == 3 {
			break
		}
	}
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	wire.SetStatus(ctx, http.StatusCreated)
	return &sharev1.CreateSignedShareResponse{SignedShare: s.signedProto(l)}, nil
}

// ListSignedShares implements ShareService.
func (s *Service) ListSignedShares(ctx context.Context, req *sharev1.ListSignedSharesRequest) (*sharev1.ListSignedSharesResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	size, err := page.Size(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	var after *Cursor
	if at, key, ok, err := page.Parse(req.GetPageToken(), linkIDRE.MatchString); err != nil {
		return nil, err
	} else if ok {
		after = &Cursor{CreatedAt: at, Slug: key}
	}
	rows, err := s.store.ListSignedLinks(ctx, p.UserID, after, size+1)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	resp := &sharev1.ListSignedSharesResponse{}
	rows, resp.NextPageToken = page.Trim(rows, size, func(l SignedLink) (time.Time, string) { return l.CreatedAt, l.ID })
	for _, l := range rows {
		resp.SignedShares = append(resp.SignedShares, s.signedProto(l))
	}
	return resp, nil
}

// RevokeSignedShare implements ShareService.
func (s *Service) RevokeSignedShare(ctx context.Context, req *sharev1.RevokeSignedShareRequest) (*sharev1.RevokeSignedShareResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	if !linkIDRE.MatchString(req.GetId()) {
		return nil, apierr.InvalidArgument("id", "must be the 22-character id of a signed share")
	}
	l, err := s.store.GetSignedLink(ctx, req.GetId())
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "signed share not found")
	}
	if l.OwnerID != p.UserID && !p.Admin {
		return nil, apierr.PermissionDenied("only the signed share's owner may revoke it")
	}
	if err := s.store.RevokeSignedLink(ctx, l.ID, s.now().UTC().Truncate(time.Microsecond)); err != nil {
		return nil, apierr.FromStorage(ctx, err, "signed share not found")
	}
	// Committed: now every replica must refuse it.
	s.broadcastRevoked(ctx, map[string]time.Time{l.ID: l.ExpiresAt})
	return &sharev1.RevokeSignedShareResponse{}, nil
}

// GetSignedSharePage implements ShareService: the token is verified with
// the key ring, and the page is the colour it carries. The revocation check
// reads memory in the steady state (linkguard.go); a single-use link is
// used up by an atomic write in the store (the only way two replicas
// cannot both show it), so its view always costs one.
func (s *Service) GetSignedSharePage(ctx context.Context, req *sharev1.GetSignedSharePageRequest) (*httpbody.HttpBody, error) {
	c, err := s.keys.verify(req.GetToken())
	if errors.Is(err, errMalformedToken) {
		return nil, apierr.InvalidArgument("token", "is not a signed share token")
	}
	if err != nil {
		return nil, apierr.NotFound("signed share not found")
	}
	now := s.now()
	if !now.Before(c.expires()) {
		return nil, gone(ctx, "expired")
	}
	if err := s.checkSigned(ctx, c, now); err != nil {
		return nil, err
	}
	page, err := s.render(c.Hex, true)
	if err != nil {
		return nil, apierr.Internal(ctx, err)
	}
	// Never from a copy: the next view must see a revocation or a use.
	wire.SetHeader(ctx, "cache-control", "no-store")
	return &httpbody.HttpBody{ContentType: "text/html; charset=utf-8", Data: page.body}, nil
}

// checkSigned refuses a revoked or used link.
func (s *Service) checkSigned(ctx context.Context, c linkClaims, now time.Time) error {
	if !c.SingleUse {
		epoch, err := s.linkEpochs.Current(ctx)
		revoked, sure := s.revoked.check(c.ID, epoch)
		if revoked {
			signedLinkChecks.WithLabelValues("memory").Inc()
			return gone(ctx, "revoked")
		}
		if sure && err == nil {
			signedLinkChecks.WithLabelValues("memory").Inc()
			return nil
		}
	}
	signedLinkChecks.WithLabelValues("database").Inc()
	if c.SingleUse {
		used, err := s.store.UseSignedLink(ctx, c.ID, now.UTC())
		if err != nil {
			return apierr.FromStorage(ctx, err, "")
		}
		if used {
			return nil
		}
	}
	l, err := s.store.GetSignedLink(ctx, c.ID)
	switch {
	case errors.Is(err, storeerr.ErrNotFound):
		// Validly signed, yet unknown: its row is gone (a restored
		// database); refuse it as revoked.
		return gone(ctx, "revoked")
	case err != nil:
		return apierr.FromStorage(ctx, err, "")
	case !l.RevokedAt.IsZero():
		return gone(ctx, "revoked")
	case c.SingleUse && !l.UsedAt.IsZero():
		return gone(ctx, "used")
	case c.SingleUse:
		// Not used, not revoked, yet the use did not take: it expired in
		// between.
		return gone(ctx, "expired")
	}
	return nil
}

// ReasonGone is the ErrorInfo reason of a NOT_FOUND for a signed link that
// expired, was revoked or was used up (its metadata "state" says which).
const ReasonGone = "GONE"

// gone is NOT_FOUND with reason GONE, answered 410 over HTTP (a browser
// gets the gateway's "No longer available" page).
func gone(ctx context.Context, state string) error {
	wire.SetStatus(ctx, http.StatusGone)
	st, err := status.New(codes.NotFound, "signed share "+state).WithDetails(&errdetails.ErrorInfo{
		Reason: ReasonGone, Domain: apierr.Domain, Metadata: map[string]string{"state": state},
	})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func (s *Service) signedProto(l SignedLink) *sharev1.SignedShare {
	tok := s.keys.sign(claimsOf(l))
	out := &sharev1.SignedShare{
		Id: l.ID, Url: s.cfg.PublicBaseURL + signedPath + tok, Token: tok, Hex: l.Hex, OwnerUserId: l.OwnerID,
		CreateTime: timestamppb.New(l.CreatedAt), ExpireTime: timestamppb.New(l.ExpiresAt),
		SingleUse: l.SingleUse, Revoked: !l.RevokedAt.IsZero(),
	}
	if !l.UsedAt.IsZero() {
		out.UseTime = timestamppb.New(l.UsedAt)
	}
	return out
}
