// Package page is the keyset pagination the List RPCs share: a page size
// checked the same way everywhere and an opaque token naming the last row
// of the previous page by (time, key), newest first.
package page

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/apiplatform/platform/server/platform/apierr"
)

const (
	defaultSize = 50
	maxSize     = 100
)

// Size returns the page size a request asked for (0: the default), or
// INVALID_ARGUMENT on page_size.
func Size(n int32) (int, error) {
	switch {
	case n < 0 || n > maxSize:
		return 0, apierr.InvalidArgument("page_size", "must be 0 to 100")
	case n == 0:
		return defaultSize, nil
	}
	return int(n), nil
}

// Token names the position after the row (at, key).
func Token(at time.Time, key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMicro(), 10) + ":" + key))
}

// Parse reads a token ("" is the first page: ok false, no error); valid
// checks the key. A token this API did not hand out is INVALID_ARGUMENT on
// page_token.
func Parse(tok string, valid func(key string) bool) (at time.Time, key string, ok bool, err error) {
	if tok == "" {
		return time.Time{}, "", false, nil
	}
	bad := apierr.InvalidArgument("page_token", "is not a token this API returned")
	b, derr := base64.RawURLEncoding.DecodeString(tok)
	if derr != nil {
		return time.Time{}, "", false, bad
	}
	ts, key, found := strings.Cut(string(b), ":")
	us, perr := strconv.ParseInt(ts, 10, 64)
	if !found || perr != nil || !valid(key) {
		return time.Time{}, "", false, bad
	}
	return time.UnixMicro(us).UTC(), key, true, nil
}

// Trim cuts rows, read with a limit of size+1 (the extra row tells whether
// there is a next page), to one page, and returns the next page's token
// ("" on the last page); pos names a row's (time, key).
func Trim[T any](rows []T, size int, pos func(T) (time.Time, string)) ([]T, string) {
	if len(rows) <= size {
		return rows, ""
	}
	rows = rows[:size]
	return rows, Token(pos(rows[size-1]))
}
