// Package auth authenticates SMTP clients: password hashing (argon2id), the
// SASL LOGIN and PLAIN servers, a short-lived cache of verified logins, and
// the throttle that slows down password guessing per client address.
//
// go-sasl (which go-smtp's AUTH uses) ships no LOGIN server, so both
// mechanisms are written here; they are small and fuzzed.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	KeyLen  uint32
	SaltLen uint32
}

// DefaultParams follow OWASP's argon2id recommendation (19 MiB, 2 passes,
// 1 thread). A verification costs about 20 ms on these machines, which is
// why the LoginCache exists.
var DefaultParams = Params{Memory: 19456, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}

// Bounds a stored hash's parameters must respect before Postern spends
// memory on it: a corrupted or hostile row must not allocate gigabytes.
const (
	maxMemory  = 256 << 10 // KiB: 256 MiB
	maxTime    = 16
	maxThreads = 16
)

var errMalformedHash = errors.New("malformed argon2id hash")

// HashPassword hashes a password with DefaultParams into a PHC string:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash> (unpadded standard base64).
func HashPassword(password string) (string, error) {
	return HashPasswordWithParams(password, DefaultParams)
}

// HashPasswordWithParams hashes with the given parameters.
func HashPasswordWithParams(password string, p Params) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches the PHC string encoded.
// The comparison is constant-time; a malformed hash is an error.
func VerifyPassword(encoded, password string) (bool, error) {
	p, salt, key, err := decodeHash(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

func decodeHash(encoded string) (Params, []byte, []byte, error) {
	var p Params
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, errMalformedHash
	}
	var vals [3]uint64
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return p, nil, nil, errMalformedHash
	}
	for i, prefix := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(fields[i], prefix)
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil {
			return p, nil, nil, errMalformedHash
		}
		vals[i] = n
	}
	if vals[2] > maxThreads {
		return p, nil, nil, errMalformedHash
	}
	p.Memory, p.Time, p.Threads = uint32(vals[0]), uint32(vals[1]), uint8(vals[2])
	if p.Memory < 8 || p.Memory > maxMemory || p.Time < 1 || p.Time > maxTime || p.Threads < 1 || p.Threads > maxThreads ||
		p.Memory < 8*uint32(p.Threads) {
		return p, nil, nil, errMalformedHash
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return p, nil, nil, errMalformedHash
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, errMalformedHash
	}
	return p, salt, key, nil
}

// dummyHash is verified against when no real hash exists (unknown user,
// shared mailbox), so the reply takes as long as a real failure.
var dummyHash = func() string {
	h, err := HashPassword("postern-dummy-password")
	if err != nil {
		panic(err)
	}
	return h
}()

// DummyVerify spends the time of one verification and reveals nothing.
func DummyVerify(password string) { VerifyPassword(dummyHash, password) }
