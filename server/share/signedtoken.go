package share

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Signed share links carry their page in the token: the colour, the owner,
// the expiry and the link's id, signed with HMAC-SHA256. Verifying one is a
// hash, no database read. HMAC rather than Ed25519: only this service
// signs and verifies, so a shared secret is all it needs, and it is the
// cheaper check on the page path.
//
// The key ring: several keys are accepted (a token names its key by id),
// the first signs. Where the keys come from:
//
//   - --share-link-keys (env SHARE_LINK_KEYS), comma-separated secrets of
//     at least 32 bytes: for deployments that keep secrets out of the
//     database and rotate them (put the new key first, keep the old one
//     after it until the links it signed have expired, at most
//     maxSignedExpiry);
//   - otherwise a ring stored in the database, created once: the first
//     replica to start stores a random key and every replica reads it back
//     (Store.LinkKeys), so any number of replicas sign and verify alike
//     with no configuration. Anyone who can read that table can sign links;
//     a deployment that minds passes the flag.

// minLinkKey is the shortest accepted secret (HMAC-SHA256's block of
// security: 256 bits).
const minLinkKey = 32

type linkKey struct {
	id     string // first 4 bytes of SHA-256(secret), hex: names the key in tokens
	secret []byte
}

// keyRing signs with its first key and verifies with any.
type keyRing struct{ keys []linkKey }

func newKeyRing(secrets [][]byte) (*keyRing, error) {
	if len(secrets) == 0 {
		return nil, errors.New("share: empty signing key ring")
	}
	r := &keyRing{}
	for i, s := range secrets {
		if len(s) < minLinkKey {
			return nil, fmt.Errorf("share: signing key %d is %d bytes, want at least %d", i+1, len(s), minLinkKey)
		}
		sum := sha256.Sum256(s)
		r.keys = append(r.keys, linkKey{id: hex.EncodeToString(sum[:4]), secret: s})
	}
	return r, nil
}

// loadKeyRing is the configured ring, or the stored one (created once).
func loadKeyRing(ctx context.Context, configured []string, st SignedLinkStore) (*keyRing, error) {
	var secrets [][]byte
	for _, k := range configured {
		if k = strings.TrimSpace(k); k != "" {
			secrets = append(secrets, []byte(k))
		}
	}
	if len(secrets) == 0 {
		candidate := make([]byte, 32)
		if _, err := rand.Read(candidate); err != nil {
			return nil, err
		}
		var err error
		if secrets, err = st.LinkKeys(ctx, candidate); err != nil {
			return nil, fmt.Errorf("share: signing key ring: %w", err)
		}
	}
	return newKeyRing(secrets)
}

// linkClaims is what a token says.
type linkClaims struct {
	Key       string `json:"k"`
	ID        string `json:"i"`
	Owner     string `json:"o"`
	Hex       string `json:"c"`
	ExpiresMs int64  `json:"e"` // Unix milliseconds
	SingleUse bool   `json:"u,omitempty"`
}

func (c linkClaims) expires() time.Time { return time.UnixMilli(c.ExpiresMs).UTC() }

var (
	b64 = base64.RawURLEncoding
	// tokenRE: base64url payload (bounded), a dot, a base64url HMAC-SHA256.
	tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{16,512}\.[A-Za-z0-9_-]{43}$`)
)

// claimsOf is the claims of a link as stored.
func claimsOf(l SignedLink) linkClaims {
	return linkClaims{ID: l.ID, Owner: l.OwnerID, Hex: l.Hex, ExpiresMs: l.ExpiresAt.UnixMilli(), SingleUse: l.SingleUse}
}

// sign makes the token of c with the first key.
func (r *keyRing) sign(c linkClaims) string {
	k := r.keys[0]
	c.Key = k.id
	raw, _ := json.Marshal(c) // plain strings and numbers: cannot fail
	payload := b64.EncodeToString(raw)
	return payload + "." + b64.EncodeToString(mac(k.secret, payload))
}

func mac(secret []byte, payload string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

var (
	errMalformedToken = errors.New("malformed token")
	errBadSignature   = errors.New("token not signed by this server")
)

// verify returns the claims of a token signed by a key of the ring:
// errMalformedToken when it cannot be a token, errBadSignature when no key
// signed it.
func (r *keyRing) verify(tok string) (linkClaims, error) {
	if !tokenRE.MatchString(tok) {
		return linkClaims{}, errMalformedToken
	}
	payload, sig, _ := strings.Cut(tok, ".")
	raw, err1 := b64.DecodeString(payload)
	got, err2 := b64.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return linkClaims{}, errMalformedToken
	}
	// The key id is inside the signed payload: read it to pick the key,
	// trust nothing else before the MAC matches.
	var head struct {
		Key string `json:"k"`
	}
	if json.Unmarshal(raw, &head) != nil {
		return linkClaims{}, errBadSignature
	}
	for _, k := range r.keys {
		if k.id != head.Key {
			continue
		}
		if !hmac.Equal(got, mac(k.secret, payload)) {
			break
		}
		var c linkClaims
		if json.Unmarshal(raw, &c) != nil || c.ID == "" {
			return linkClaims{}, errBadSignature
		}
		return c, nil
	}
	return linkClaims{}, errBadSignature
}
