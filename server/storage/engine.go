// Package storage names what a storage engine is: one value holding every
// service's store. The store interfaces belong to the services that use them;
// the engines live in subpackages (embedded, sqlstore) and the errors they
// report at the ground of the import graph (platform/storeerr).
package storage

import (
	"github.com/apiplatform/platform/server/canvas"
	"github.com/apiplatform/platform/server/favorite"
	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/share"
	"github.com/apiplatform/platform/server/shortener"
	"github.com/apiplatform/platform/server/vote"
)

// Engine is a storage engine: every service's store, and Close.
type Engine interface {
	identity.Store
	favorite.Store
	share.Store
	shortener.Store
	vote.Store
	canvas.Store
	Close() error
}
