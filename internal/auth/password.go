// Package auth authenticates SMTP clients: password hashing (argon2id), the
// SASL PLAIN and LOGIN servers, a short-lived cache of verified logins, and
// a throttle that slows down password guessing per client address.
//
// Every piece is built so that a failed sign-in looks the same, in reply
// and in timing, whether or not the mailbox exists: unknown users cost a
// dummy verification (DummyVerify), malformed SASL messages get the same
// reply as wrong passwords (ErrMalformedCredentials), and the throttle
// counts failures per address, never per user name.
//
// go-sasl, which go-smtp's AUTH command drives, ships no LOGIN server, and
// its PLAIN server neither bounds field lengths nor refuses a foreign
// authorization identity, so both mechanisms are written here.
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

// Params are argon2id's cost parameters (RFC 9106 section 3.1).
type Params struct {
	Memory  uint32 // m, in KiB
	Time    uint32 // t, passes over the memory
	Threads uint8  // p, lanes
	KeyLen  uint32 // tag length in bytes
	SaltLen uint32 // in bytes
}

// DefaultParams follow OWASP's Password Storage Cheat Sheet for argon2id
// (19 MiB, 2 passes, 1 lane), RFC 9106 section 4's 16-byte salt and a
// 32-byte tag. One verification costs tens of milliseconds, which is why
// LoginCache exists.
var DefaultParams = Params{Memory: 19456, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}

// Bounds on parameters, checked when hashing and, above all, before
// verifying against a stored string: a corrupted or hostile row must not
// make Postern allocate gigabytes or spin for minutes.
const (
	maxMemory  = 256 << 10 // KiB, i.e. 256 MiB
	maxTime    = 16
	maxThreads = 16
	minSaltLen = 8 // RFC 9106 section 3.1: salt of 8 to 2^32-1 bytes
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

// phcPrefix starts every string Postern writes and reads: the PHC string
// format (github.com/P-H-C/phc-string-format) for argon2id version 1.3.
var phcPrefix = fmt.Sprintf("$argon2id$v=%d$", argon2.Version)

// b64 is the PHC format's base64: the standard alphabet without padding
// (RFC 4648 section 4, section 3.2 on omitting "=").
var b64 = base64.RawStdEncoding.Strict()

var (
	errMalformedHash = errors.New("auth: malformed argon2id hash")
	errBadParams     = errors.New("auth: argon2id parameters out of bounds")
)

// HashPassword hashes password with DefaultParams into a PHC string:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(password string) (string, error) {
	return HashPasswordWithParams(password, DefaultParams)
}

// HashPasswordWithParams hashes password with p and a fresh random salt.
// It refuses parameters that VerifyPassword would refuse to read back.
func HashPasswordWithParams(password string, p Params) (string, error) {
	if !p.valid() || p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen {
		return "", errBadParams
	}
	salt := make([]byte, p.SaltLen)
	rand.Read(salt) // never fails (crypto/rand, Go 1.24 and later)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("%sm=%d,t=%d,p=%d$%s$%s", phcPrefix, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches the PHC string encoded,
// comparing the tags in constant time. A string that does not parse, or
// whose parameters are out of bounds, is an error and costs no hashing.
func VerifyPassword(encoded, password string) (bool, error) {
	p, salt, key, err := decodeHash(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// valid checks the cost parameters and the tag length. RFC 9106 section
// 3.1 requires m >= 8p KiB; x/crypto would silently round such a value up,
// so the stored string would misstate the work done.
func (p Params) valid() bool {
	return p.Time >= 1 && p.Time <= maxTime &&
		p.Threads >= 1 && p.Threads <= maxThreads &&
		p.Memory >= 8*uint32(p.Threads) && p.Memory <= maxMemory &&
		p.KeyLen >= minKeyLen && p.KeyLen <= maxKeyLen
}

// decodeHash parses "$argon2id$v=19$m=M,t=T,p=P$salt$hash", exactly the
// form HashPasswordWithParams writes (fields in that order, no optional
// "data" or "keyid" parameters).
func decodeHash(encoded string) (p Params, salt, key []byte, err error) {
	rest, ok := strings.CutPrefix(encoded, phcPrefix)
	parts := strings.Split(rest, "$")
	if !ok || len(parts) != 3 {
		return p, nil, nil, errMalformedHash
	}
	m, t, threads, ok := parseCosts(parts[0])
	if !ok {
		return p, nil, nil, errMalformedHash
	}
	if salt, err = b64.DecodeString(parts[1]); err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return p, nil, nil, errMalformedHash
	}
	if key, err = b64.DecodeString(parts[2]); err != nil {
		return p, nil, nil, errMalformedHash
	}
	p = Params{Memory: m, Time: t, Threads: threads, KeyLen: uint32(len(key)), SaltLen: uint32(len(salt))}
	if !p.valid() {
		return p, nil, nil, errMalformedHash
	}
	return p, salt, key, nil
}

// parseCosts parses "m=M,t=T,p=P". Values that overflow their types are
// refused here; the bounds are Params.valid's business.
func parseCosts(s string) (m, t uint32, p uint8, ok bool) {
	fields := strings.Split(s, ",")
	if len(fields) != 3 {
		return 0, 0, 0, false
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		digits, found := strings.CutPrefix(fields[i], name)
		v, err := strconv.ParseUint(digits, 10, 32)
		if !found || err != nil {
			return 0, 0, 0, false
		}
		vals[i] = v
	}
	if vals[2] > 255 {
		return 0, 0, 0, false
	}
	return uint32(vals[0]), uint32(vals[1]), uint8(vals[2]), true
}

// dummyHash was made once with DefaultParams from a random password that
// was then thrown away; a test keeps its parameters equal to DefaultParams.
// Being a literal, it costs nothing at start-up.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$VxcCiQmfGpAxHOL9plsRCQ$VoXzOmtnaqDQ83T1yddoICbDbC4IIOLAl1BlDEeg7mU"

// DummyVerify spends the time of one verification against a hash nobody
// knows the password of. Call it when there is no real hash to check (an
// unknown user, a mailbox without a password), so that the reply takes as
// long as for a wrong password and does not reveal whether the mailbox
// exists.
func DummyVerify(password string) {
	_, _ = VerifyPassword(dummyHash, password) // only the time spent matters
}
