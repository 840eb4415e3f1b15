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
	period := periodStart(req.GetGranularity())
	if period == nil {
		return nil, apierr.InvalidArgument("granularity", "must be STATS_GRANULARITY_DAY, _WEEK or _MONTH")
	}
	l, _, err := s.owned(ctx, req.GetCode())
	if err != nil {
		return nil, err
	}
	rows, err := s.store.ClickStats(ctx, l.Code, from, to)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	dims, err := s.store.ClickDims(ctx, l.Code, from, to)
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
	resp.Periods = periods(resp.Days, period)
	byDim := map[string]map[string]*shortenerv1.DimensionClicks{}
	for _, d := range dims {
		m := byDim[d.Dim]
		if m == nil {
			m = map[string]*shortenerv1.DimensionClicks{}
			byDim[d.Dim] = m
		}
		dc := m[d.Value]
		if dc == nil {
			dc = &shortenerv1.DimensionClicks{Value: d.Value}
			m[d.Value] = dc
		}
		if d.Bot {
			dc.BotClicks += d.Clicks
		} else {
			dc.HumanClicks += d.Clicks
		}
	}
	resp.Referrers = topDims(byDim[DimReferrer])
	resp.Browsers = topDims(byDim[DimBrowser])
	resp.OperatingSystems = topDims(byDim[DimOS])
	resp.Devices = topDims(byDim[DimDevice])
	return resp, nil
}

// maxDimValues bounds each dimension's list; the rest are summed as "other".
const maxDimValues = 50

// otherValue names the sum of the values past maxDimValues.
const otherValue = "other"

func topDims(m map[string]*shortenerv1.DimensionClicks) []*shortenerv1.DimensionClicks {
	out := make([]*shortenerv1.DimensionClicks, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *shortenerv1.DimensionClicks) int {
		if d := (b.HumanClicks + b.BotClicks) - (a.HumanClicks + a.BotClicks); d != 0 {
			if d > 0 {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Value, b.Value)
	})
	if len(out) <= maxDimValues {
		return out
	}
	rest := &shortenerv1.DimensionClicks{Value: otherValue}
	for _, d := range out[maxDimValues-1:] {
		rest.HumanClicks += d.HumanClicks
		rest.BotClicks += d.BotClicks
	}
	return append(out[:maxDimValues-1], rest)
}

// periodStart returns the function that maps a day to the first day of its
// bucket, nil for an unknown granularity.
func periodStart(g shortenerv1.StatsGranularity) func(time.Time) time.Time {
	switch g {
	case shortenerv1.StatsGranularity_STATS_GRANULARITY_UNSPECIFIED, shortenerv1.StatsGranularity_STATS_GRANULARITY_DAY:
		return func(d time.Time) time.Time { return d }
	case shortenerv1.StatsGranularity_STATS_GRANULARITY_WEEK:
		// ISO weeks start on Monday.
		return func(d time.Time) time.Time { return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7)) }
	case shortenerv1.StatsGranularity_STATS_GRANULARITY_MONTH:
		return func(d time.Time) time.Time { return time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, time.UTC) }
	}
	return nil
}

// periods sums the (ordered, complete) days into buckets.
func periods(days []*shortenerv1.DayClicks, start func(time.Time) time.Time) []*shortenerv1.PeriodClicks {
	var out []*shortenerv1.PeriodClicks
	for _, dc := range days {
		d, _ := time.Parse(time.DateOnly, dc.Date)
		key := start(d).Format(time.DateOnly)
		if len(out) == 0 || out[len(out)-1].Start != key {
			out = append(out, &shortenerv1.PeriodClicks{Start: key})
		}
		p := out[len(out)-1]
		p.HumanClicks += dc.HumanClicks
		p.BotClicks += dc.BotClicks
	}
	return out
}
