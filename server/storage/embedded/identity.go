package embedded

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/apiplatform/platform/server/identity"
)

// bUsedRefresh maps the hash of every rotated refresh token to its session
// family, so that a replayed token can revoke the family.
var bUsedRefresh = []byte("session_used_refresh")

func init() { allBuckets = append(allBuckets, bUsedRefresh) }

func familyOf(sess identity.Session) string {
	if sess.FamilyID == "" {
		return sess.ID
	}
	return sess.FamilyID
}

func rememberUsedRefresh(tx *bolt.Tx, old identity.Session) error {
	return tx.Bucket(bUsedRefresh).Put(old.RefreshHash, []byte(familyOf(old)))
}

// RevokeFamily implements identity.Store. Sessions are not indexed by
// family: a scan is fine for the one-process store (this runs only when a
// stolen refresh token shows up).
func (s *Store) RevokeFamily(ctx context.Context, refreshHash []byte) (ids []string, err error) {
	err = s.update(ctx, func(tx *bolt.Tx) error {
		ids = nil
		fam := tx.Bucket(bUsedRefresh).Get(refreshHash)
		if fam == nil {
			return nil
		}
		family := string(fam)
		ids, err = deleteSessionsWhere(tx, func(sess identity.Session) bool { return familyOf(sess) == family })
		return err
	})
	return ids, err
}
