package shortener

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/page"
	"github.com/apiplatform/platform/server/platform/password"
)

// owned reads a live link the caller may manage.
func (s *Service) owned(ctx context.Context, code string) (Link, auth.Principal, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return Link{}, p, err
	}
	if err := validCode(code); err != nil {
		return Link{}, p, err
	}
	l, err := s.store.GetLink(ctx, code)
	if err != nil {
		return Link{}, p, s.storeErr(ctx, err)
	}
	if !l.DeletedAt.IsZero() {
		return Link{}, p, gone(ctx, "deleted")
	}
	if l.OwnerID != p.UserID && !p.Admin {
		return Link{}, p, apierr.PermissionDenied("only the link's owner may do this")
	}
	return l, p, nil
}

// GetShortUrl implements ShortenerService.
func (s *Service) GetShortUrl(ctx context.Context, req *shortenerv1.GetShortUrlRequest) (*shortenerv1.GetShortUrlResponse, error) {
	l, _, err := s.owned(ctx, req.GetCode())
	if err != nil {
		return nil, err
	}
	return &shortenerv1.GetShortUrlResponse{ShortUrl: s.toProto(l)}, nil
}

// ListShortUrls implements ShortenerService.
func (s *Service) ListShortUrls(ctx context.Context, req *shortenerv1.ListShortUrlsRequest) (*shortenerv1.ListShortUrlsResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	size, err := page.Size(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	after, err := decodeCursor(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	q := strings.TrimSpace(req.GetQuery())
	// Control characters match nothing stored, and PostgreSQL refuses NUL.
	if len(q) > maxQueryBytes || !utf8.ValidString(q) || strings.ContainsFunc(q, unicode.IsControl) {
		return nil, apierr.InvalidArgument("query", fmt.Sprintf("must be printable UTF-8 text of at most %d bytes", maxQueryBytes))
	}
	rows, err := s.store.ListLinks(ctx, p.UserID, q, after, size+1)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	resp := &shortenerv1.ListShortUrlsResponse{}
	rows, resp.NextPageToken = page.Trim(rows, size, func(l Link) (time.Time, string) { return l.CreatedAt, l.Code })
	for _, l := range rows {
		resp.ShortUrls = append(resp.ShortUrls, s.toProto(l))
	}
	return resp, nil
}

// maxQueryBytes bounds a list search.
const maxQueryBytes = 200

// UpdateShortUrl implements ShortenerService.
func (s *Service) UpdateShortUrl(ctx context.Context, req *shortenerv1.UpdateShortUrlRequest) (*shortenerv1.UpdateShortUrlResponse, error) {
	var v apierr.Validator
	var u LinkUpdate
	now := s.now().UTC().Truncate(time.Microsecond)
	if req.LongUrl != nil {
		target, problem := s.targets.normalize(req.GetLongUrl())
		v.Check(problem == "", "long_url", problem)
		u.Target = &target
	}
	if req.ExpiresInSec != nil {
		e := req.GetExpiresInSec()
		v.Check(e >= 0 && e <= maxExpirySec, "expires_in_sec", fmt.Sprintf("must be 0 (no expiry) or 1 to %d seconds", maxExpirySec))
		var at time.Time
		if e > 0 {
			at = now.Add(time.Duration(e) * time.Second)
		}
		u.ExpiresAt = &at
	}
	if req.Password != nil {
		p := passwordProblem(req.GetPassword())
		v.Check(p == "", "password", p)
	}
	switch req.GetRedirectKind() {
	case shortenerv1.RedirectKind_REDIRECT_KIND_UNSPECIFIED:
	case shortenerv1.RedirectKind_REDIRECT_KIND_FOUND:
		k := http.StatusFound
		u.Kind = &k
	case shortenerv1.RedirectKind_REDIRECT_KIND_MOVED_PERMANENTLY:
		k := http.StatusMovedPermanently
		u.Kind = &k
	default:
		v.Check(false, "redirect_kind", "must be REDIRECT_KIND_FOUND or REDIRECT_KIND_MOVED_PERMANENTLY")
	}
	if req.MaxVisits != nil {
		m := req.GetMaxVisits()
		v.Check(m >= 0, "max_visits", "must be 0 (no limit) or a positive number of visits")
		u.MaxVisits = &m
	}
	u.DeviceTargets = s.deviceProblems(req.GetDeviceLongUrls(), true, func(field, desc string) { v.Check(false, field, desc) })
	if err := v.Err(); err != nil {
		return nil, err
	}
	l, _, err := s.owned(ctx, req.GetCode())
	if err != nil {
		return nil, err
	}
	if u.Target == nil && u.ExpiresAt == nil && u.Kind == nil && u.MaxVisits == nil && len(u.DeviceTargets) == 0 && req.Password == nil {
		return &shortenerv1.UpdateShortUrlResponse{ShortUrl: s.toProto(l)}, nil
	}
	if req.Password != nil {
		h := ""
		if pw := req.GetPassword(); pw != "" {
			if h, err = password.Hash(ctx, pw); err != nil {
				return nil, password.Status(ctx, err)
			}
		}
		u.PasswordHash = &h
	}
	l, err = s.store.UpdateLink(ctx, l.Code, u)
	if err != nil {
		return nil, s.storeErr(ctx, err)
	}
	s.invalidate(ctx, true, l.Code)
	return &shortenerv1.UpdateShortUrlResponse{ShortUrl: s.toProto(l)}, nil
}

// DeleteShortUrl implements ShortenerService.
func (s *Service) DeleteShortUrl(ctx context.Context, req *shortenerv1.DeleteShortUrlRequest) (*shortenerv1.DeleteShortUrlResponse, error) {
	l, _, err := s.owned(ctx, req.GetCode())
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteLink(ctx, l.Code, s.now().UTC().Truncate(time.Microsecond)); err != nil {
		return nil, s.storeErr(ctx, err)
	}
	s.invalidate(ctx, true, l.Code)
	return &shortenerv1.DeleteShortUrlResponse{}, nil
}

func (s *Service) shortURL(code string) string { return s.base + "/" + code }

func (s *Service) toProto(l Link) *shortenerv1.ShortUrl {
	out := &shortenerv1.ShortUrl{
		Code: l.Code, ShortUrl: s.shortURL(l.Code), LongUrl: l.Target, OwnerUserId: l.OwnerID,
		RedirectKind:      shortenerv1.RedirectKind_REDIRECT_KIND_FOUND,
		PasswordProtected: l.PasswordHash != "", CreateTime: timestamppb.New(l.CreatedAt), ClickCount: l.Clicks,
		BotClickCount: l.BotClicks, MaxVisits: l.MaxVisits,
	}
	if len(l.DeviceTargets) > 0 {
		out.DeviceLongUrls = maps.Clone(l.DeviceTargets)
	}
	if l.Kind == http.StatusMovedPermanently {
		out.RedirectKind = shortenerv1.RedirectKind_REDIRECT_KIND_MOVED_PERMANENTLY
	}
	if !l.ExpiresAt.IsZero() {
		out.ExpireTime = timestamppb.New(l.ExpiresAt)
	}
	if !l.LastAccessAt.IsZero() {
		out.LastAccessTime = timestamppb.New(l.LastAccessAt)
	}
	if !l.LastHumanAt.IsZero() {
		out.LastHumanAccessTime = timestamppb.New(l.LastHumanAt)
	}
	return out
}

func decodeCursor(tok string) (*Cursor, error) {
	at, key, ok, err := page.Parse(tok, codeRE.MatchString)
	if !ok {
		return nil, err
	}
	return &Cursor{CreatedAt: at, Code: key}, nil
}
