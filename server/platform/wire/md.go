package wire

import "google.golang.org/grpc/metadata"

// MD builds a metadata of one value per key in one map and one backing
// array: the hot paths set a handful of keys per call, and metadata.Pairs
// or MD.Set allocate a slice per key. Each key's slice is clipped to its
// one value, so a reader appending to it copies instead of writing over
// the next key's value. Keys must be lower-case already.
type MD struct {
	md   metadata.MD
	vals []string
}

// NewMD returns a builder sized for n keys (more still fit; they cost an
// allocation).
func NewMD(n int) MD {
	return MD{md: make(metadata.MD, n), vals: make([]string, 0, n)}
}

// Set gives key the single value v.
func (b *MD) Set(key, v string) {
	j := len(b.vals)
	b.vals = append(b.vals, v)
	b.md[key] = b.vals[j : j+1 : j+1]
}

// MD is the metadata built so far.
func (b *MD) MD() metadata.MD { return b.md }
