package sqlstore

import (
	"fmt"
	"regexp"
	"strings"
)

// Table localities on a multi-region CockroachDB database, chosen per access
// pattern. Everything not listed stays REGIONAL BY TABLE in the primary
// region (CockroachDB's default).
var (
	// GLOBAL: read from every region on hot paths, written rarely. Reads are
	// local and consistent; writes pay a cross-region commit wait.
	//   shares, short_links: every page view / redirect resolves a slug or code
	//     (hit and click counters are batched, so their writes stay rare);
	//   elections, candidates: read on every vote, written by admins;
	//   canvas_bans: read on every placement; a ban is seen at once everywhere.
	globalTables = []string{"shares", "short_links", "elections", "candidates", "canvas_bans"}

	// REGIONAL BY ROW, homed where the row was created (the gateway's
	// region): per-user data, read and written by its owner from near where
	// they are. Lookups by key try the local region first.
	userTables = []string{"users", "sessions", "favorites", "idempotency_keys"}

	// REGIONAL BY ROW with crdb_region computed from a region column that is
	// part of the primary key, so the key alone names the row's region and
	// uniqueness checks stay local:
	//   votes, vote_counters, vote_audit: the election's home region, so an
	//     election's votes, counters and audit rows commit in one region;
	//   click_events, click_daily, click_dims: the region that served the click.
	regionColumnTables = []struct{ table, column string }{
		{"votes", "home_region"},
		{"vote_counters", "home_region"},
		{"vote_audit", "home_region"},
		{"click_events", "region"},
		{"click_daily", "region"},
		{"click_dims", "region"},
	}

	// canvas_placements stays in the primary region (REGIONAL BY TABLE): the
	// canvas has one global order (seq), so its writes serialise somewhere
	// anyway; keeping them in one region avoids cross-region uniqueness
	// checks on seq. Its key is hash-sharded (cockroachdb/0003).
	primaryRegionTables = []string{"canvas_placements"}
)

// regionRE accepts CockroachDB region names as cloud providers spell them
// (us-east1, europe-west2, aws-ap-southeast-2): lower-case letters, digits
// and inner hyphens.
var regionRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// identRE is what a database name must look like to be spliced into DDL.
var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,62}$`)

// ddlStep is one generated statement and the slot it fills: a step whose
// statement is unchanged since it was last applied is skipped.
type ddlStep struct{ step, stmt string }

// ValidateRegions checks a region list: non-empty, well-formed names, no
// duplicates.
func ValidateRegions(regions []string) error {
	if len(regions) == 0 {
		return fmt.Errorf("sqlstore: no regions given")
	}
	seen := map[string]bool{}
	for _, r := range regions {
		if len(r) > 63 || !regionRE.MatchString(r) {
			return fmt.Errorf("sqlstore: invalid region name %q (want lower-case letters, digits and hyphens, e.g. us-east1)", r)
		}
		if seen[r] {
			return fmt.Errorf("sqlstore: region %q listed twice", r)
		}
		seen[r] = true
	}
	return nil
}

// MultiRegionDDL returns the CockroachDB-only statements that make database
// multi-region over regions and give each table its locality, one statement
// each, in the order they must run. The first region is the primary one: it
// comes from the configuration, not from the replica running the migration,
// so every replica generates the same statements. To move the primary
// region, first deploy with the new region added after the current primary,
// then move it to the front.
func MultiRegionDDL(database string, regions []string) ([]string, error) {
	steps, err := multiRegionSteps(database, regions)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.stmt
	}
	return out, nil
}

func multiRegionSteps(database string, regions []string) ([]ddlStep, error) {
	if !identRE.MatchString(database) {
		return nil, fmt.Errorf("sqlstore: invalid database name %q", database)
	}
	if err := ValidateRegions(regions); err != nil {
		return nil, err
	}
	db := quoteIdent(database)
	var steps []ddlStep
	add := func(step, format string, args ...any) {
		steps = append(steps, ddlStep{step, fmt.Sprintf(format, args...)})
	}
	add("primary-region", "ALTER DATABASE %s PRIMARY REGION %s", db, quoteIdent(regions[0]))
	for _, r := range regions[1:] {
		add("region:"+r, "ALTER DATABASE %s ADD REGION IF NOT EXISTS %s", db, quoteIdent(r))
	}
	// Surviving the loss of a whole region needs at least three of them;
	// below that, replicas spread over zones of each region.
	if len(regions) >= 3 {
		add("survival", "ALTER DATABASE %s SURVIVE REGION FAILURE", db)
	} else {
		add("survival", "ALTER DATABASE %s SURVIVE ZONE FAILURE", db)
	}
	for _, t := range globalTables {
		add("locality:"+t, "ALTER TABLE %s SET LOCALITY GLOBAL", t)
	}
	for _, t := range userTables {
		add("locality:"+t, "ALTER TABLE %s SET LOCALITY REGIONAL BY ROW", t)
	}
	for _, t := range regionColumnTables {
		// An unknown region fails the cast, so a row can only be homed in a
		// region the database has.
		add("column:"+t.table+".crdb_region",
			"ALTER TABLE %s ADD COLUMN IF NOT EXISTS crdb_region crdb_internal_region NOT VISIBLE NOT NULL AS (%s::crdb_internal_region) STORED",
			t.table, t.column)
		add("locality:"+t.table, "ALTER TABLE %s SET LOCALITY REGIONAL BY ROW AS crdb_region", t.table)
	}
	for _, t := range primaryRegionTables {
		add("locality:"+t, "ALTER TABLE %s SET LOCALITY REGIONAL BY TABLE IN PRIMARY REGION", t)
	}
	return steps, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
