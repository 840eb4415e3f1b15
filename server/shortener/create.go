package shortener

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc/status"

	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/password"
	"github.com/apiplatform/platform/server/platform/wire"
)

const (
	maxExpirySec = 10 * 365 * 24 * 3600
	maxBatch     = 1000
	// maxBatchPasswords bounds the distinct passwords of one batch: each
	// costs an argon2id hash (tens of milliseconds of CPU).
	maxBatchPasswords = 10
)

// item is one link being created.
type item struct {
	link     Link
	password string
	err      error
}

// prepare validates one create request.
func (s *Service) prepare(req *shortenerv1.CreateShortUrlRequest, owner string, now time.Time) (Link, []apierr.FieldViolation) {
	var vs []apierr.FieldViolation
	bad := func(field, desc string) { vs = append(vs, apierr.FieldViolation{Field: field, Description: desc}) }
	l := Link{OwnerID: owner, CreatedAt: now, Kind: http.StatusFound}
	target, problem := s.targets.normalize(req.GetLongUrl())
	if problem != "" {
		bad("long_url", problem)
	}
	l.Target = target
	if a := req.GetAlias(); a != "" {
		if p := aliasProblem(a); p != "" {
			bad("alias", p)
		}
		l.Code, l.Custom = a, true
	}
	switch e := req.GetExpiresInSec(); {
	case e < 0 || e > maxExpirySec:
		bad("expires_in_sec", fmt.Sprintf("must be 0 (never) or 1 to %d seconds", maxExpirySec))
	case e > 0:
		l.ExpiresAt = now.Add(time.Duration(e) * time.Second)
	}
	if p := passwordProblem(req.GetPassword()); p != "" {
		bad("password", p)
	}
	switch req.GetRedirectKind() {
	case shortenerv1.RedirectKind_REDIRECT_KIND_UNSPECIFIED, shortenerv1.RedirectKind_REDIRECT_KIND_FOUND:
	case shortenerv1.RedirectKind_REDIRECT_KIND_MOVED_PERMANENTLY:
		l.Kind = http.StatusMovedPermanently
	default:
		bad("redirect_kind", "must be REDIRECT_KIND_FOUND or REDIRECT_KIND_MOVED_PERMANENTLY")
	}
	if m := req.GetMaxVisits(); m < 0 {
		bad("max_visits", "must be 0 (no limit) or a positive number of visits")
	} else {
		l.MaxVisits = m
	}
	l.DeviceTargets = s.deviceProblems(req.GetDeviceLongUrls(), false, bad)
	return l, vs
}

// CreateShortUrl implements ShortenerService.
func (s *Service) CreateShortUrl(ctx context.Context, req *shortenerv1.CreateShortUrlRequest) (*shortenerv1.CreateShortUrlResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	l, vs := s.prepare(req, p.UserID, now)
	if len(vs) > 0 {
		return nil, apierr.InvalidArguments(vs...)
	}
	if err := s.limitCreates(ctx, p.UserID, 1); err != nil {
		return nil, err
	}
	items := []*item{{link: l, password: req.GetPassword()}}
	if err := s.createItems(ctx, items); err != nil {
		return nil, err
	}
	if items[0].err != nil {
		return nil, items[0].err
	}
	wire.SetStatus(ctx, http.StatusCreated)
	return &shortenerv1.CreateShortUrlResponse{ShortUrl: s.toProto(items[0].link)}, nil
}

// BatchCreateShortUrls implements ShortenerService.
func (s *Service) BatchCreateShortUrls(ctx context.Context, req *shortenerv1.BatchCreateShortUrlsRequest) (*shortenerv1.BatchCreateShortUrlsResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	if n := len(req.GetRequests()); n == 0 || n > maxBatch {
		return nil, apierr.InvalidArgument("requests", fmt.Sprintf("must hold 1 to %d items", maxBatch))
	}
	if err := s.limitCreates(ctx, p.UserID, len(req.GetRequests())); err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	items := make([]*item, len(req.GetRequests()))
	aliases := map[string]bool{}
	passwords := map[string]bool{}
	for i, r := range req.GetRequests() {
		l, vs := s.prepare(r, p.UserID, now)
		it := &item{link: l, password: r.GetPassword()}
		items[i] = it
		switch {
		case len(vs) > 0:
			it.err = apierr.InvalidArguments(vs...)
		case l.Custom && aliases[l.Code]:
			it.err = apierr.AlreadyExists("alias "+strconv.Quote(l.Code)+" is taken by an earlier item", "ALIAS_TAKEN")
		case it.password != "" && !passwords[it.password] && len(passwords) == maxBatchPasswords:
			it.err = apierr.InvalidArgument("password", fmt.Sprintf("a batch may use at most %d different passwords", maxBatchPasswords))
		}
		if it.err == nil {
			if l.Custom {
				aliases[l.Code] = true
			}
			if it.password != "" {
				passwords[it.password] = true
			}
		}
	}
	if err := s.createItems(ctx, items); err != nil {
		return nil, err
	}
	resp := &shortenerv1.BatchCreateShortUrlsResponse{Results: make([]*shortenerv1.BatchCreateShortUrlsResult, len(items))}
	for i, it := range items {
		r := &shortenerv1.BatchCreateShortUrlsResult{}
		if it.err != nil {
			st, _ := status.FromError(it.err)
			r.ErrorCode, r.ErrorMessage = int32(st.Code()), st.Message()
		} else {
			r.ShortUrl = s.toProto(it.link)
		}
		resp.Results[i] = r
	}
	return resp, nil
}

// createItems stores the items without an error, setting err on those that
// fail on their own (alias taken). It fails as a whole only when the store
// does.
func (s *Service) createItems(ctx context.Context, items []*item) error {
	hashes := map[string]string{}
	for _, it := range items {
		if it.err != nil || it.password == "" {
			continue
		}
		h, ok := hashes[it.password]
		if !ok {
			var err error
			if h, err = password.Hash(ctx, it.password); err != nil {
				return password.Status(ctx, err)
			}
			hashes[it.password] = h
		}
		it.link.PasswordHash = h
	}
	var pending []*item
	for _, it := range items {
		if it.err == nil {
			pending = append(pending, it)
		}
	}
	var created []string
	defer func() { s.invalidate(ctx, false, created...) }()
	// A generated code can only be refused when a custom alias took that
	// value first; its item then gets the next id. Rounds are bounded all
	// the same.
	for round := 0; len(pending) > 0; round++ {
		if round == 5 {
			for _, it := range pending {
				it.err = apierr.Unavailable("could not allocate a code; retry", time.Second)
			}
			break
		}
		var gen []*item
		for _, it := range pending {
			if !it.link.Custom {
				gen = append(gen, it)
			}
		}
		codes, err := s.newCodes(ctx, len(gen))
		if err != nil {
			if errors.Is(err, errCodeSpaceExhausted) {
				return apierr.Internal(ctx, err)
			}
			return apierr.FromStorage(ctx, err, "")
		}
		for i, it := range gen {
			it.link.Code = codes[i]
		}
		links := make([]Link, len(pending))
		for i, it := range pending {
			links[i] = it.link
		}
		ok, err := s.store.CreateLinks(ctx, links)
		if err != nil {
			return apierr.FromStorage(ctx, err, "")
		}
		var next []*item
		for i, it := range pending {
			switch {
			case ok[i]:
				created = append(created, it.link.Code)
			case it.link.Custom:
				it.err = apierr.AlreadyExists("alias "+strconv.Quote(it.link.Code)+" is taken", "ALIAS_TAKEN")
			default:
				next = append(next, it)
			}
		}
		pending = next
	}
	return nil
}

// newCodes returns n fresh generated codes, none of them a reserved word.
func (s *Service) newCodes(ctx context.Context, n int) ([]string, error) {
	out := make([]string, 0, n)
	for len(out) < n {
		ids, err := s.ids.take(ctx, n-len(out))
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			code, err := s.codec.encode(id)
			if err != nil {
				return nil, err
			}
			if !reserved(code) {
				out = append(out, code)
			}
		}
	}
	return out, nil
}
