package shortener

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// # Generated codes
//
// A generated code is the 7-character base62 form of permute(id):
//
//   - id comes from a counter that hands out every value once. The store
//     reserves blocks of consecutive ids in a transaction (ReserveIDs), and
//     each process spends its block locally, so a create costs no extra
//     round trip and two processes never hold the same id. Ids left in a
//     block when a process stops are simply never used.
//   - permute is a keyed pseudorandom permutation of [0, 62^7): a balanced
//     Feistel network over 42 bits whose round function is AES-128 under a
//     key kept in the database (CodeKey, created once at random), restricted
//     to the code space by cycle walking (Black & Rogaway, "Ciphers with
//     Arbitrary Finite Domains", 2002): encrypt again until the value falls
//     below 62^7. A permutation maps distinct ids to distinct values, so
//     codes are unique by construction: no random draw, no retry on
//     collision. (A custom alias can take a 7-character value first; the
//     insert then conflicts and that id is skipped, see createLinks.)
//   - without the key, the codes of consecutive ids are unrelated, so a code
//     says nothing about the codes issued before or after it: holding one
//     link gives no way to walk to other people's links, and the counter's
//     value (how many links exist) is not revealed either.
//
// 62^7 ≈ 3.5·10^12 codes is 3,500 times the 10^9 links of the spec. The key
// must never change once codes were issued (a new key would map future ids
// onto codes already taken), which is why it lives in the database next to
// the counter and not in configuration.

const (
	codeLen    = 7
	codeSpace  = 3521614606208 // 62^7
	feistelBit = 21            // half width: 2^42 ≥ 62^7
	halfMask   = 1<<feistelBit - 1
	rounds     = 8
	base62     = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// codec turns ids into codes and back.
type codec struct{ block cipher.Block }

// newCodec derives the round function's AES key from the stored key.
func newCodec(key []byte) (*codec, error) {
	if len(key) < 16 {
		return nil, errors.New("shortener: code key shorter than 16 bytes")
	}
	sum := sha256.Sum256(append([]byte("shortener code permutation v1\x00"), key...))
	b, err := aes.NewCipher(sum[:16])
	if err != nil {
		return nil, err
	}
	return &codec{block: b}, nil
}

// round is the Feistel round function: 21 pseudorandom bits of (round, x).
func (c *codec) round(r int, x uint64) uint64 {
	var in, out [16]byte
	in[0] = byte(r)
	binary.BigEndian.PutUint64(in[8:], x)
	c.block.Encrypt(out[:], in[:])
	return binary.BigEndian.Uint64(out[:8]) & halfMask
}

func (c *codec) encrypt42(x uint64) uint64 {
	l, r := x>>feistelBit, x&halfMask
	for i := range rounds {
		l, r = r, l^c.round(i, r)
	}
	return l<<feistelBit | r
}

func (c *codec) decrypt42(x uint64) uint64 {
	l, r := x>>feistelBit, x&halfMask
	for i := rounds - 1; i >= 0; i-- {
		l, r = r^c.round(i, l), l
	}
	return l<<feistelBit | r
}

// permute maps [0, 62^7) onto itself, one to one. Cycle walking ends: the
// 42-bit permutation's cycle through id contains id itself, which is in the
// domain; on average it takes 2^42/62^7 ≈ 1.25 encryptions.
func (c *codec) permute(id uint64) uint64 {
	x := c.encrypt42(id)
	for x >= codeSpace {
		x = c.encrypt42(x)
	}
	return x
}

func (c *codec) unpermute(v uint64) uint64 {
	x := c.decrypt42(v)
	for x >= codeSpace {
		x = c.decrypt42(x)
	}
	return x
}

// encode returns id's code.
func (c *codec) encode(id uint64) (string, error) {
	if id >= codeSpace {
		return "", errCodeSpaceExhausted
	}
	v := c.permute(id)
	var out [codeLen]byte
	for i := codeLen - 1; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return string(out[:]), nil
}

// decode returns the id a generated code was made from (tests, debugging).
func (c *codec) decode(code string) (uint64, error) {
	if len(code) != codeLen {
		return 0, fmt.Errorf("shortener: %q is not a generated code", code)
	}
	var v uint64
	for i := range codeLen {
		d := digit62(code[i])
		if d < 0 {
			return 0, fmt.Errorf("shortener: %q is not base62", code)
		}
		v = v*62 + uint64(d)
	}
	return c.unpermute(v), nil
}

func digit62(b byte) int {
	switch {
	case b >= '0' && b <= '9':
		return int(b - '0')
	case b >= 'A' && b <= 'Z':
		return int(b-'A') + 10
	case b >= 'a' && b <= 'z':
		return int(b-'a') + 36
	}
	return -1
}

var errCodeSpaceExhausted = errors.New("shortener: code space exhausted")

// idAllocator spends blocks of ids reserved in the store.
type idAllocator struct {
	mu        sync.Mutex
	next, end uint64
	block     int
	reserve   func(ctx context.Context, n int) (uint64, error)
}

// take returns n ids never returned before by any process on this store.
// Ids of a reservation cut short by an error are skipped, never reused.
func (a *idAllocator) take(ctx context.Context, n int) ([]uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]uint64, 0, n)
	for len(out) < n {
		if a.next == a.end {
			want := max(a.block, n-len(out))
			first, err := a.reserve(ctx, want)
			if err != nil {
				return nil, err
			}
			if first+uint64(want) > codeSpace {
				return nil, errCodeSpaceExhausted
			}
			a.next, a.end = first, first+uint64(want)
		}
		out = append(out, a.next)
		a.next++
	}
	return out, nil
}
