package shortener

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
)

// maxStatsDays bounds a stats range: to may be at most 366 days after from.
const maxStatsDays = 366

// GetStats implements ShortenerService.
func (s *Service) GetStats(ctx context.Context, req *shortenerv1.GetStatsRequest) (*shortenerv1.GetStatsResponse, error) {
	today := s.now().UTC().Truncate(24 * time.Hour)
	to, from := today, time.Time{}
	var v apierr.Validator
	if req.GetTo() != "" {
		var err error
		to, err = time.Parse(time.DateOnly, req.GetTo())
		v.Check(err == nil, "to", "must be a date as YYYY-MM-DD")
	}
	if req.GetFrom() != "" {
		var err error
		from, err = time.Parse(time.DateOnly, req.GetFrom())
		v.Check(err == nil, "from", "must be a date as YYYY-MM-DD")
	} else {
		from = to.AddDate(0, 0, -29)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if to.Before(from) {
		return nil, apierr.InvalidArgument("to", "must not be before from")
	}
	if to.Sub(from) > maxStatsDays*24*time.Hour {
		return nil, apierr.InvalidArgument("to", fmt.Sprintf("must be at most %d days after from", maxStatsDays))
	}
	l, _, err := s.owned(ctx, req.GetCode())
	if err != nil {
		return nil, err
	}
	rows, err := s.store.ClickStats(ctx, l.Code, from, to)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	resp := &shortenerv1.GetStatsResponse{Code: l.Code}
	index := map[string]*shortenerv1.DayClicks{}
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		dc := &shortenerv1.DayClicks{Date: d.Format(time.DateOnly)}
		index[dc.Date] = dc
		resp.Days = append(resp.Days, dc)
	}
	countries := map[string]*shortenerv1.CountryClicks{}
	for _, r := range rows {
		dc := index[r.Date.UTC().Format(time.DateOnly)]
		cc := countries[r.Country]
		if cc == nil {
			cc = &shortenerv1.CountryClicks{Country: r.Country}
			countries[r.Country] = cc
		}
		if r.Bot {
			cc.BotClicks += r.Clicks
			resp.TotalBotClicks += r.Clicks
			if dc != nil {
				dc.BotClicks += r.Clicks
			}
		} else {
			cc.HumanClicks += r.Clicks
			resp.TotalHumanClicks += r.Clicks
			if dc != nil {
				dc.HumanClicks += r.Clicks
			}
		}
	}
	for _, cc := range countries {
		resp.Countries = append(resp.Countries, cc)
	}
	slices.SortFunc(resp.Countries, func(a, b *shortenerv1.CountryClicks) int {
		if d := (b.HumanClicks + b.BotClicks) - (a.HumanClicks + a.BotClicks); d != 0 {
			if d > 0 {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Country, b.Country)
	})
	return resp, nil
}
