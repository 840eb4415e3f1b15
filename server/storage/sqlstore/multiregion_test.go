package sqlstore

import (
	"slices"
	"strings"
	"testing"
)

// Table localities: the same for any number of regions.
var wantLocalities = []string{
	`ALTER TABLE shares SET LOCALITY GLOBAL`,
	`ALTER TABLE short_links SET LOCALITY GLOBAL`,
	`ALTER TABLE elections SET LOCALITY GLOBAL`,
	`ALTER TABLE candidates SET LOCALITY GLOBAL`,
	`ALTER TABLE canvas_bans SET LOCALITY GLOBAL`,
	`ALTER TABLE users SET LOCALITY REGIONAL BY ROW`,
	`ALTER TABLE sessions SET LOCALITY REGIONAL BY ROW`,
	`ALTER TABLE favorites SET LOCALITY REGIONAL BY ROW`,
	`ALTER TABLE idempotency_keys SET LOCALITY REGIONAL BY ROW`,
	`ALTER TABLE votes ADD COLUMN IF NOT EXISTS crdb_region crdb_internal_region NOT VISIBLE NOT NULL AS (home_region::crdb_internal_region) STORED`,
	`ALTER TABLE votes SET LOCALITY REGIONAL BY ROW AS crdb_region`,
	`ALTER TABLE vote_counters ADD COLUMN IF NOT EXISTS crdb_region crdb_internal_region NOT VISIBLE NOT NULL AS (home_region::crdb_internal_region) STORED`,
	`ALTER TABLE vote_counters SET LOCALITY REGIONAL BY ROW AS crdb_region`,
	`ALTER TABLE vote_audit ADD COLUMN IF NOT EXISTS crdb_region crdb_internal_region NOT VISIBLE NOT NULL AS (home_region::crdb_internal_region) STORED`,
	`ALTER TABLE vote_audit SET LOCALITY REGIONAL BY ROW AS crdb_region`,
	`ALTER TABLE click_events ADD COLUMN IF NOT EXISTS crdb_region crdb_internal_region NOT VISIBLE NOT NULL AS (region::crdb_internal_region) STORED`,
	`ALTER TABLE click_events SET LOCALITY REGIONAL BY ROW AS crdb_region`,
	`ALTER TABLE click_daily ADD COLUMN IF NOT EXISTS crdb_region crdb_internal_region NOT VISIBLE NOT NULL AS (region::crdb_internal_region) STORED`,
	`ALTER TABLE click_daily SET LOCALITY REGIONAL BY ROW AS crdb_region`,
	`ALTER TABLE click_dims ADD COLUMN IF NOT EXISTS crdb_region crdb_internal_region NOT VISIBLE NOT NULL AS (region::crdb_internal_region) STORED`,
	`ALTER TABLE click_dims SET LOCALITY REGIONAL BY ROW AS crdb_region`,
	`ALTER TABLE canvas_placements SET LOCALITY REGIONAL BY TABLE IN PRIMARY REGION`,
}

func TestMultiRegionDDL(t *testing.T) {
	for _, c := range []struct {
		regions []string
		want    []string
	}{
		{
			[]string{"us-east1"},
			append([]string{
				`ALTER DATABASE "platform" PRIMARY REGION "us-east1"`,
				`ALTER DATABASE "platform" SURVIVE ZONE FAILURE`,
			}, wantLocalities...),
		},
		{
			[]string{"us-east1", "europe-west1"},
			append([]string{
				`ALTER DATABASE "platform" PRIMARY REGION "us-east1"`,
				`ALTER DATABASE "platform" ADD REGION IF NOT EXISTS "europe-west1"`,
				`ALTER DATABASE "platform" SURVIVE ZONE FAILURE`,
			}, wantLocalities...),
		},
		{
			[]string{"us-east1", "europe-west1", "asia-southeast1"},
			append([]string{
				`ALTER DATABASE "platform" PRIMARY REGION "us-east1"`,
				`ALTER DATABASE "platform" ADD REGION IF NOT EXISTS "europe-west1"`,
				`ALTER DATABASE "platform" ADD REGION IF NOT EXISTS "asia-southeast1"`,
				`ALTER DATABASE "platform" SURVIVE REGION FAILURE`,
			}, wantLocalities...),
		},
	} {
		got, err := MultiRegionDDL("platform", c.regions)
		if err != nil {
			t.Fatalf("%v: %v", c.regions, err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("MultiRegionDDL(%v) =\n%s\nwant\n%s", c.regions, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
}

// Every table of the schema gets a deliberate locality.
func TestEveryTableHasALocality(t *testing.T) {
	stmts, err := MultiRegionDDL("platform", []string{"us-east1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"users", "sessions", "favorites", "idempotency_keys", "shares", "short_links",
		"click_events", "click_daily", "click_dims", "elections", "candidates", "votes", "vote_counters", "vote_audit",
		"canvas_placements", "canvas_bans"} {
		if !slices.ContainsFunc(stmts, func(s string) bool { return strings.HasPrefix(s, "ALTER TABLE "+table+" SET LOCALITY ") }) {
			t.Errorf("no locality for %s", table)
		}
	}
}

func TestMultiRegionDDLValidation(t *testing.T) {
	for _, c := range []struct {
		database string
		regions  []string
		want     string
	}{
		{"platform", nil, "no regions"},
		{"platform", []string{"us-east1", "US-WEST1"}, "invalid region"},
		{"platform", []string{`us"east`}, "invalid region"},
		{"platform", []string{"us-east1 ; DROP"}, "invalid region"},
		{"platform", []string{"-us"}, "invalid region"},
		{"platform", []string{strings.Repeat("a", 64)}, "invalid region"},
		{"platform", []string{"us-east1", "eu-west1", "us-east1"}, "twice"},
		{`plat"form`, []string{"us-east1"}, "invalid database"},
		{"", []string{"us-east1"}, "invalid database"},
	} {
		_, err := MultiRegionDDL(c.database, c.regions)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("MultiRegionDDL(%q, %q) = %v, want an error mentioning %q", c.database, c.regions, err, c.want)
		}
	}
	if _, err := MultiRegionDDL("platform-prod", []string{"aws-ap-southeast-2", "gcp-europe-west4"}); err != nil {
		t.Errorf("cloud-prefixed region names: %v", err)
	}
}
