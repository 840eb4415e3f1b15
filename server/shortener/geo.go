package shortener

import (
	"fmt"
	"net/netip"

	"github.com/oschwald/maxminddb-golang/v2"
)

// geoDB looks countries up in a MaxMind DB file (GeoLite2/GeoIP2 Country or
// City, or any database with the same country.iso_code layout), read with
// MaxMind's own pure-Go reader (memory-mapped, safe for concurrent use).
type geoDB struct{ r *maxminddb.Reader }

func openGeoDB(path string) (*geoDB, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("shortener: open GeoIP database: %w", err)
	}
	return &geoDB{r: r}, nil
}

// country returns addr's ISO country code, "" when unknown.
func (g *geoDB) country(addr netip.Addr) string {
	var rec struct {
		Country struct {
			ISOCode string `maxminddb:"iso_code"`
		} `maxminddb:"country"`
	}
	if err := g.r.Lookup(addr.Unmap()).Decode(&rec); err != nil {
		return ""
	}
	return rec.Country.ISOCode
}

func (g *geoDB) close() {
	if g != nil {
		_ = g.r.Close()
	}
}
